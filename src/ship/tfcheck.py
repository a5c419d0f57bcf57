"""`python -m ship.tfcheck [validate] [test]`: Terraform's own checks, offline-capable.

For each root module (the stack and github-oidc): `init -backend=false
-lockfile=readonly` in a throwaway data directory (the provider must match the
committed .terraform.lock.hcl, which is never rewritten), then `validate`
and/or `terraform test` (the *.tftest.hcl files under tests/, plan mode against
mocked providers: no credentials, no network). Used by the nox `terraform`
session; it shares ship's provider-mirror logic so it works on machines
without access to the Terraform registry.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from ship import paths, terraform
from ship.errors import ShipError

# Root modules: the stack and the account-level OIDC deploy role.
ROOTS = (".", "github-oidc")
COMMANDS = ("validate", "test")


def check(commands: tuple[str, ...] = COMMANDS) -> int:
    tf = terraform.binary()
    env = dict(os.environ)
    config = terraform.cli_config(paths.state_dir())
    if config:
        env["TF_CLI_CONFIG_FILE"] = str(config)
    for root in ROOTS:
        workdir = paths.terraform_dir() / root
        with tempfile.TemporaryDirectory(prefix="tfcheck-") as data_dir:
            env["TF_DATA_DIR"] = data_dir
            steps = [[tf, "init", "-backend=false", "-input=false", "-no-color", "-lockfile=readonly"]]
            steps += [[tf, command, "-no-color"] for command in commands]
            for argv in steps:
                result = subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True)
                if result.returncode != 0:
                    print(f"{workdir}: {' '.join(argv[1:])}\n{result.stdout.strip()}\n{result.stderr.strip()}",
                          file=sys.stderr)
                    return result.returncode
                if argv[1] != "init":
                    print(f"{workdir}: {argv[1]}: {_last_line(result.stdout)}")
    return 0


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def main(argv: list[str]) -> int:
    commands = tuple(argv) or COMMANDS
    if not set(commands) <= set(COMMANDS):
        print(f"usage: python -m ship.tfcheck [{'] ['.join(COMMANDS)}]", file=sys.stderr)
        return 2
    try:
        return check(commands)
    except ShipError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
