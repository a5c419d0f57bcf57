"""WSGI entry point for gunicorn: ``gunicorn hello.wsgi:app``."""

import sys

from hello import create_app
from hello.config import ConfigError

try:
    app = create_app()
except ConfigError as err:
    # One line naming the variable, then a non-zero exit: the task fails to start.
    print(f"hello: configuration error: {err}", file=sys.stderr, flush=True)
    raise SystemExit(3) from None
