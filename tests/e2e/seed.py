"""Make a seed: a stack deployed once and stopped, that e2e runs start from instead of a cold
deploy each (``SHIP_E2E_SEED``, tests/e2e/conftest.py).

``python tests/e2e/seed.py DEST`` (in the runtime of ``SHIP_LOCAL_RUNTIME``): a private copy of
the working tree in ``DEST/repo``, its local cloud's state in ``DEST/state``; one cold
``inv deploy --env=local``, then ``inv local.down``, which saves the local cloud's state (the
stack, its images, Terraform's state) and stops every task. ``DEST/seed.json`` is written last:
a seed without it is unfinished. A run that starts from the seed copies both folders, and its
``inv deploy --env=local`` restores the stack: the same services, task definitions and images,
without the provider's ~70 s of fixed waits. The integration session (noxfile.py) makes one seed
per runtime and removes the seed's images once every run that used it has ended."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))   # tests/: helpers


def _e2e_conftest():
    """tests/e2e/conftest.py (not tests/conftest.py, which ``import conftest`` would find)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("e2e_conftest", HERE / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


e2e = _e2e_conftest()
Stack, _copy_tree, remove_images_built = e2e.Stack, e2e._copy_tree, e2e.remove_images_built
from ship.net import free_port  # noqa: E402


def make(dest: Path) -> dict:
    repo, state = dest / "repo", dest / "state"
    repo.mkdir(parents=True)
    _copy_tree(repo)
    stack = Stack(repo, state, free_port(), dest / "inv.log")
    ok = False
    try:
        started = time.monotonic()
        result = stack.inv("deploy", "--env=local")
        seconds = time.monotonic() - started
        url = result.stdout.strip().splitlines()[-1]
        assert url.startswith("http://127.0.0.1:"), url
        stack.inv("local.down")
        record = {"runtime": stack.runtime, "commit": stack.git("rev-parse", "HEAD").strip(),
                  "cold_deploy_seconds": round(seconds, 1), "url": url}
        (dest / e2e.SEED_READY).write_text(json.dumps(record, indent=1))
        ok = True
        return record
    finally:
        if not ok:
            stack.inv("local.down", check=False, timeout=120)
            if stack.runtime == "container":
                remove_images_built([repo])


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python tests/e2e/seed.py DEST (an empty or missing folder)", file=sys.stderr)
        return 2
    dest = Path(sys.argv[1]).resolve()
    if dest.exists() and any(dest.iterdir()):
        print(f"{dest} is not empty: give a new folder", file=sys.stderr)
        return 2
    record = make(dest)
    print(f"seed ({record['runtime']}) in {dest}: cold deploy {record['cold_deploy_seconds']}s, "
          f"commit {record['commit'][:12]}", flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("SHIP_LOCAL_RUNTIME", "process")
    sys.exit(main())
