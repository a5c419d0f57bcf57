"""Terraform (or OpenTofu) for ship: the only module that builds its command lines.

Command lines are composed by python-terraform; ship runs them itself so it
can give each environment its own process environment (emulator endpoint and
dummy credentials for local environments only), its own data directory, an
offline provider mirror when one is configured, and live progress with
elapsed time on long steps.

Every line Terraform prints goes to a log file per environment
(``<state>/logs/terraform-<env>.log``, one block per command); what reaches
the terminal is up to the caller: each line with its elapsed time (the
default), or each line handed to ``on_line`` (``ship.progress`` turns them
into a status line and a timeline).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Callable

from python_terraform import IsFlagged, Terraform

from ship import aws, paths
from ship.config import Environment
from ship.errors import ShipError

# Where ship looks for an unpacked provider mirror when SHIP_TF_PROVIDER_MIRROR
# is unset (a folder holding registry.terraform.io/). The first is where this
# project's CI machines keep it; the others are Terraform's own implicit dirs.
MIRROR_CANDIDATES = (
    "/opt/tf-plugins",
    "~/.terraform.d/plugins",
    "/usr/local/share/terraform/plugins",
    "/usr/share/terraform/plugins",
)
LOG_ROTATE_BYTES = 8 * 1024 * 1024   # the log keeps the last runs: one older file beside it


def binary() -> str:
    name = os.environ.get("TF_BINARY", "terraform")
    path = shutil.which(name)
    if not path:
        raise ShipError(f"{name} not found on PATH: install Terraform >= 1.10 "
                        "(https://developer.hashicorp.com/terraform/install) or set TF_BINARY=tofu for OpenTofu")
    return path


def provider_mirror() -> Path | None:
    explicit = os.environ.get("SHIP_TF_PROVIDER_MIRROR")
    if explicit:
        path = Path(explicit).expanduser()
        if not (path / "registry.terraform.io").is_dir():
            raise ShipError(f"SHIP_TF_PROVIDER_MIRROR={explicit} holds no registry.terraform.io/ folder; "
                            "point it at the mirror root or unset it")
        return path
    user_config = os.environ.get("TF_CLI_CONFIG_FILE")
    if user_config and Path(user_config).is_file():
        return None  # the user configured provider installation themselves
    for candidate in MIRROR_CANDIDATES:
        path = Path(candidate).expanduser()
        if (path / "registry.terraform.io").is_dir():
            return path
    return None


def cli_config(state: Path) -> Path | None:
    """Write a CLI config using the provider mirror (if any) and a shared plugin cache."""
    mirror = provider_mirror()
    if mirror is None:
        return None
    cache = state / "terraform" / "plugin-cache"
    cache.mkdir(parents=True, exist_ok=True)
    config = state / "terraform" / "cli.tfrc"
    text = (
        f'plugin_cache_dir = "{cache}"\n'
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path    = "{mirror}"\n    include = ["registry.terraform.io/*/*"]\n  }}\n'
        '  direct {\n    exclude = ["registry.terraform.io/*/*"]\n  }\n'
        "}\n"
    )
    if not config.is_file() or config.read_text() != text:
        config.write_text(text)
    return config


class Runner:
    """Runs one environment's Terraform commands in terraform/."""

    def __init__(self, env: Environment, echo=print, on_line: Callable[[str], None] | None = None):
        self.env = env
        self.echo = echo
        self.on_line = on_line
        self.workdir = paths.terraform_dir()
        self.data_dir = paths.state_dir() / "terraform" / env.name
        self.log_path = paths.state_dir() / "logs" / f"terraform-{env.name}.log"
        self._tf = Terraform(working_dir=str(self.workdir), terraform_bin_path=binary())

    # -- command lines ------------------------------------------------------
    def command(self, cmd: str, *args, **options) -> list[str]:
        return self._tf.generate_cmd_string(cmd, *args, **options)

    def process_env(self) -> dict:
        env = aws.terraform_env(self.env)
        state = paths.state_dir()
        config = cli_config(state)
        if config:
            env["TF_CLI_CONFIG_FILE"] = str(config)
        env["TF_DATA_DIR"] = str(self.data_dir)
        env["TF_IN_AUTOMATION"] = "1"
        env["TF_INPUT"] = "0"
        return env

    def backend_config(self) -> dict:
        cfg = {"bucket": self.env.state_bucket, "key": self.env.state_key, "region": self.env.region,
               "use_lockfile": "true", "encrypt": "true"}
        if self.env.emulator:
            cfg.update({"use_path_style": "true", "skip_credentials_validation": "true",
                        "skip_requesting_account_id": "true", "skip_metadata_api_check": "true",
                        "skip_region_validation": "true", "skip_s3_checksum": "true"})
        return cfg

    # -- running ------------------------------------------------------------
    def run(self, argv: list[str], stream: bool = False, doing: str = "") -> tuple[int, str]:
        """Run a command; with ``stream``, print its lines with elapsed time as they come."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        proc = subprocess.Popen(argv, cwd=self.workdir, env=self.process_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)
        lines = []
        log = self._open_log(argv)
        try:
            for line in proc.stdout:
                lines.append(line)
                self._show(line, started, stream, log)
            proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            proc.wait()
            raise
        finally:
            if log is not None:
                log.write(f"# exit {proc.returncode} after {time.monotonic() - started:.1f}s\n")
                log.close()
        return proc.returncode, "".join(lines)

    # -- output -------------------------------------------------------------
    def _open_log(self, argv: list[str]):
        """The environment's Terraform log, opened for one more command (None if it cannot be)."""
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            if self.log_path.is_file() and self.log_path.stat().st_size > LOG_ROTATE_BYTES:
                os.replace(self.log_path, self.log_path.with_name(self.log_path.name + ".1"))
            log = open(self.log_path, "a", encoding="utf-8", buffering=1)
        except OSError:
            return None
        log.write(f"\n# {datetime.now().isoformat(timespec='seconds')} {' '.join(argv[1:])}\n")
        return log

    def _show(self, line: str, started: float, stream: bool, log) -> None:
        """Log every line; stream it to ``on_line`` or, by default, echo it with the elapsed time."""
        if log is not None:
            log.write(f"[{time.monotonic() - started:6.1f}s] {line.rstrip()}\n")
        if not stream or not line.strip():
            return
        if self.on_line is not None:
            self.on_line(line.rstrip("\n"))
        else:
            self.echo(f"[{time.monotonic() - started:6.1f}s] {line.rstrip()}")

    def _fail(self, doing: str, output: str) -> ShipError:
        errors = [ln.strip("│ ").strip() for ln in output.splitlines() if ln.strip("│ ").startswith("Error")]
        detail = errors[0] if errors else (output.strip().splitlines() or ["no output"])[-1]
        hint = ""
        if "NoSuchBucket" in output or "bucket does not exist" in output:
            hint = f"; run `inv bootstrap --env={self.env.name}` to create the state bucket"
        return ShipError(f"terraform {doing} failed for {self.env.name}: {detail}{hint}")

    def init(self) -> None:
        argv = self.command("init", backend_config=self.backend_config(), reconfigure=IsFlagged, input=False,
                            no_color=IsFlagged)
        code, out = self.run(argv, doing="init")
        if code != 0:
            raise self._fail("init", out)

    def _vars(self, variables: dict) -> dict:
        return {"environment": self.env.name, **variables}

    def plan(self, variables: dict, stream: bool = True, destroy: bool = False) -> int:
        """Return 0 (no changes) or 2 (changes), as ``-detailed-exitcode`` does."""
        argv = self.command("plan", var=self._vars(variables), input=False, no_color=IsFlagged,
                            detailed_exitcode=IsFlagged, lock_timeout="60s",
                            destroy=IsFlagged if destroy else None)
        try:
            code, out = self.run(argv, stream=stream, doing="plan")
        finally:
            self._tf.temp_var_files.clean_up()
        if code not in (0, 2):
            raise self._fail("plan", out)
        return code

    def apply(self, variables: dict, targets: list[str] | None = None, stream: bool = True) -> None:
        argv = self.command("apply", var=self._vars(variables), target=targets or None, input=False,
                            no_color=IsFlagged, auto_approve=IsFlagged, lock_timeout="60s")
        try:
            code, out = self.run(argv, stream=stream, doing="apply")
        finally:
            self._tf.temp_var_files.clean_up()
        if code != 0:
            raise self._fail("apply", out)

    def destroy(self, variables: dict, stream: bool = True) -> None:
        argv = self.command("destroy", var=self._vars(variables), input=False, no_color=IsFlagged,
                            auto_approve=IsFlagged, lock_timeout="60s")
        try:
            code, out = self.run(argv, stream=stream, doing="destroy")
        finally:
            self._tf.temp_var_files.clean_up()
        if code != 0:
            raise self._fail("destroy", out)

    def outputs(self) -> dict:
        code, out = self.run(self.command("output", json=IsFlagged, no_color=IsFlagged), doing="output")
        if code != 0:
            raise self._fail("output", out)
        try:
            return {k: v["value"] for k, v in json.loads(out).items()}
        except ValueError:
            raise ShipError(f"terraform output for {self.env.name} is not JSON: {out.strip()[:200]}") from None

    def state_resources(self) -> list[str]:
        code, out = self.run(self.command("state list"), doing="state list")
        if code != 0:
            return []
        return [line for line in out.splitlines() if line.strip()]


def version() -> str:
    out = subprocess.run([binary(), "version", "-json"], capture_output=True, text=True)
    try:
        return json.loads(out.stdout)["terraform_version"]
    except (ValueError, KeyError):
        return out.stdout.strip().splitlines()[0] if out.stdout else "unknown"


if __name__ == "__main__":  # pragma: no cover - a debugging aid
    print(version(), file=sys.stderr)
