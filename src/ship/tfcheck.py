"""`python -m ship.tfcheck validate`: init without a backend and validate, offline-capable.

Used by the nox `terraform` session; it shares ship's provider-mirror logic
so validation works on machines without access to the Terraform registry.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from ship import paths, terraform
from ship.errors import ShipError


# Root modules to validate: the stack and the account-level OIDC deploy role.
ROOTS = (".", "github-oidc")


def validate() -> int:
    tf = terraform.binary()
    env = dict(os.environ)
    config = terraform.cli_config(paths.state_dir())
    if config:
        env["TF_CLI_CONFIG_FILE"] = str(config)
    for root in ROOTS:
        workdir = paths.terraform_dir() / root
        with tempfile.TemporaryDirectory(prefix="tfcheck-") as data_dir:
            env["TF_DATA_DIR"] = data_dir
            for argv in ([tf, "init", "-backend=false", "-input=false", "-no-color"],
                         [tf, "validate", "-no-color"]):
                result = subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True)
                if result.returncode != 0:
                    print(f"{workdir}: {result.stdout.strip()}\n{result.stderr.strip()}", file=sys.stderr)
                    return result.returncode
            print(f"{workdir}: {result.stdout.strip()}")
            (workdir / ".terraform.lock.hcl").unlink(missing_ok=True)
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] != ["validate"]:
        print("usage: python -m ship.tfcheck validate", file=sys.stderr)
        return 2
    try:
        return validate()
    except ShipError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
