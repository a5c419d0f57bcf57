"""`python -m ship.tfcheck [validate] [test]`: Terraform's own checks, offline-capable.

For each root module (the stack and github-oidc): `init -backend=false
-lockfile=readonly` in a throwaway data directory (the provider must match the
committed .terraform.lock.hcl, which is never rewritten), then `validate`
and/or `terraform test` (the *.tftest.hcl files under tests/, plan mode against
mocked providers: no credentials, no network), the roots and a root's commands at the
same time (the checks leave a core idle otherwise), but the inits one at a time: they
install into one plugin cache, and two installs of a provider at once fail ("mkdir ...:
file exists"). Used by the nox `terraform` session; it shares ship's provider-mirror
logic so it works on machines without access to the Terraform registry.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor

from ship import paths, terraform
from ship.errors import ShipError

# Root modules: the stack and the account-level OIDC deploy role.
ROOTS = (".", "github-oidc")
COMMANDS = ("validate", "test")
_INIT = threading.Lock()   # Terraform's plugin cache takes one install at a time


def check(commands: tuple[str, ...] = COMMANDS) -> int:
    """Each root's checks; the roots at the same time (their inits one after the other), and after
    a root's init its commands at the same time (each reads the data directory only). Their lines
    come out in the order of ROOTS and COMMANDS; the first failure's output ends it."""
    tf = terraform.binary()
    env = dict(os.environ)
    config = terraform.cli_config(paths.state_dir())
    if config:
        env["TF_CLI_CONFIG_FILE"] = str(config)
    with ThreadPoolExecutor(max_workers=len(ROOTS)) as pool:
        results = list(pool.map(lambda root: _check_root(tf, env, root, commands), ROOTS))
    for lines, failure in results:
        for line in lines:
            print(line)
        if failure is not None:
            code, text = failure
            print(text, file=sys.stderr)
            return code
    return 0


def _check_root(tf: str, env: dict, root: str, commands: tuple[str, ...]) -> tuple[list[str], tuple[int, str] | None]:
    """(the lines of the commands that passed, (exit code, output) of the first that failed, else None)."""
    workdir = paths.terraform_dir() / root
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tfcheck-") as data_dir:
        env = dict(env, TF_DATA_DIR=data_dir)
        init = [tf, "init", "-backend=false", "-input=false", "-no-color", "-lockfile=readonly"]
        steps = [[tf, command, "-no-color"] for command in commands]

        def run(argv: list[str]) -> subprocess.CompletedProcess:
            return subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True)

        with _INIT:
            result = run(init)
        if result.returncode != 0:
            return lines, _failure(workdir, result)
        with ThreadPoolExecutor(max_workers=max(1, len(steps))) as pool:
            results = list(pool.map(run, steps))
        for result in results:
            if result.returncode != 0:
                return lines, _failure(workdir, result)
            lines.append(f"{workdir}: {result.args[1]}: {_last_line(result.stdout)}")
    return lines, None


def _failure(workdir, result: subprocess.CompletedProcess) -> tuple[int, str]:
    command = " ".join(result.args[1:])
    return result.returncode, f"{workdir}: {command}\n{result.stdout.strip()}\n{result.stderr.strip()}"


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
