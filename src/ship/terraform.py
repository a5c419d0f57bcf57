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

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

from python_terraform import IsFlagged, Terraform

from ship import aws, paths, procfs
from ship.config import Environment
from ship.errors import ShipError
from ship.fsutil import write_atomically

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
APPLIED_RECORD = "applied.json"      # ship.applied's fingerprint of the last successful apply
INIT_RECORD = "initialized.json"     # what the last successful init was given (Runner.init)
EMULATOR_PARALLELISM = 32            # operations at once on the local cloud (Runner.parallelism)


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
        paths.require_writable(self.data_dir)
        started = time.monotonic()
        proc = subprocess.Popen(argv, cwd=self.workdir, env=self.process_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)
        assert proc.stdout is not None  # stdout=PIPE
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

    def _fail(self, doing: str, output: str, code: int | None = None) -> ShipError:
        if doing == "apply" and self.env.emulator and "already exists" in output:
            journal_begin(self.data_dir)  # unrecorded resources: the next run on the emulator rebuilds
        return ShipError(explain_failure(self.env, doing, code, output, self._tf.terraform_bin_path,
                                         self.data_dir))

    def init(self) -> bool:
        """``terraform init`` of the environment's data directory (True), unless it already holds one made
        from the same inputs: every file under terraform/ but the settings file (modules, the lock
        file), the backend settings, the binary and its process environment, with the files init
        made still in place. A repeat costs 1.5-2 s of CPU (Terraform checks the provider package
        against the lock) and finds nothing new (False). A changed or missing input, or a failed init, runs it."""
        # The committed .terraform.lock.hcl decides the provider; init never rewrites it
        # (a rewritten lock would also make the tree dirty for `inv release`).
        argv = self.command("init", backend_config=self.backend_config(), reconfigure=IsFlagged, input=False,
                            no_color=IsFlagged, lockfile="readonly")
        record = self.data_dir / INIT_RECORD
        inputs = self._init_inputs(argv)
        if inputs is not None and init_current(_read_json(record), inputs, self.data_dir):
            log = self._open_log(argv)
            if log is not None:
                log.write(f"# skipped: {record} holds an init from the same inputs\n")
                log.close()
            return False
        try:
            record.unlink(missing_ok=True)
        except OSError:
            pass                        # a read-only data directory: run() says so in one line
        code, out = self.run(argv, doing="init")
        if code != 0:
            raise self._fail("init", out, code)
        if inputs is not None:
            _write_json(record, {"inputs": inputs, "made": init_outputs(self.data_dir)})
        return True

    def _init_inputs(self, argv: list[str]) -> dict | None:
        """What init reads (None when a part cannot be read: init runs)."""
        from ship import applied  # here: ship.applied builds on this module

        inputs = {"argv": argv[1:],
                  "configuration": applied.tree_digest(self.workdir, leave_out=(paths.environments_file(),)),
                  "process": applied.process_digest(self)}
        return inputs if all(inputs.values()) else None

    def variables(self, variables: dict) -> dict:
        """The variables a command is given: ``variables`` and the environment (and its settings file)."""
        return self._vars(variables)

    def forget_applied(self) -> None:
        """Before anything changes the stack: the last apply's fingerprint no longer holds."""
        (self.data_dir / APPLIED_RECORD).unlink(missing_ok=True)

    def parallelism(self) -> int | None:
        """Terraform's default of 10 operations at once spares AWS's API rate limits. The local
        cloud has none: there, a resource whose dependencies are done does not wait for a slot
        (after the VPC, ten resources started at once held the load balancer's security group,
        and so the load balancer, back 0.2 s)."""
        return EMULATOR_PARALLELISM if self.env.emulator else None

    def _vars(self, variables: dict) -> dict:
        base = {"environment": self.env.name}
        if os.environ.get("SHIP_ENVIRONMENTS_FILE"):
            # Terraform reads the same settings file as ship, not its default beside the module.
            base["environments_file"] = str(paths.environments_file().resolve())
        return {**base, **variables}

    @contextlib.contextmanager
    def _var_file(self, variables: dict) -> Iterator[str]:
        """The command's variables as a ``-var-file`` of its own in the data directory, removed after
        it (python-terraform would write one to /tmp, and a killed command left it there). The name
        holds the pid: the files of processes that are gone (killed) are removed here too."""
        paths.require_writable(self.data_dir)
        for left in self.data_dir.glob("vars-*.tfvars.json"):
            pid = left.name.split("-")[1]
            if pid.isdigit() and not procfs.alive(int(pid)):
                left.unlink(missing_ok=True)
        fd, name = tempfile.mkstemp(prefix=f"vars-{os.getpid()}-", suffix=".tfvars.json", dir=self.data_dir)
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(self._vars(variables), out)
            yield name
        finally:
            Path(name).unlink(missing_ok=True)

    def plan(self, variables: dict, stream: bool = True, destroy: bool = False) -> int:
        """Return 0 (no changes) or 2 (changes), as ``-detailed-exitcode`` does."""
        with self._var_file(variables) as var_file:
            argv = self.command("plan", var_file=var_file, input=False, no_color=IsFlagged,
                                detailed_exitcode=IsFlagged, lock_timeout="60s",
                                destroy=IsFlagged if destroy else None)
            code, out = self.run(argv, stream=stream, doing="plan")
        if code not in (0, 2):
            raise self._fail("plan", out, code)
        return code

    def apply(self, variables: dict, targets: list[str] | None = None, stream: bool = True) -> None:
        with self._var_file(variables) as var_file:
            argv = self.command("apply", var_file=var_file, target=targets or None, input=False,
                                no_color=IsFlagged, auto_approve=IsFlagged, lock_timeout="60s",
                                parallelism=self.parallelism())
            self.forget_applied()
            journal_begin(self.data_dir)  # stays if Terraform (or ship) is killed before it saved its state
            code, out = self.run(argv, stream=stream, doing="apply")
        if code != 0 and state_unsaved(out):
            self._keep_errored_state()
        elif killed_by(code) is None:
            journal_end(self.data_dir)   # Terraform saved its state, whatever the apply's outcome
        if code != 0:
            raise self._fail("apply", out, code)

    def _keep_errored_state(self) -> None:
        """Terraform writes the state it could not save to ``errored.tfstate`` in its working
        directory (the repository's terraform/): keep it in the environment's data directory."""
        errored = self.workdir / ERRORED_STATE
        if errored.is_file():
            try:
                self.data_dir.mkdir(parents=True, exist_ok=True)
                os.replace(errored, self.data_dir / ERRORED_STATE)
            except OSError:
                pass

    def destroy(self, variables: dict, stream: bool = True) -> None:
        with self._var_file(variables) as var_file:
            argv = self.command("destroy", var_file=var_file, input=False, no_color=IsFlagged,
                                auto_approve=IsFlagged, lock_timeout="60s", parallelism=self.parallelism())
            self.forget_applied()
            code, out = self.run(argv, stream=stream, doing="destroy")
        if code != 0:
            raise self._fail("destroy", out, code)

    def outputs(self) -> dict:
        code, out = self.run(self.command("output", json=IsFlagged, no_color=IsFlagged), doing="output")
        if code != 0:
            raise self._fail("output", out, code)
        try:
            return {k: v["value"] for k, v in json.loads(out).items()}
        except ValueError:
            raise ShipError(f"terraform output for {self.env.name} is not JSON: {out.strip()[:200]}") from None

    def force_unlock(self, lock_id: str) -> None:
        """Remove a stale state lock through the same backend settings as every other command."""
        code, out = self.run(self.command("force-unlock", lock_id, force=IsFlagged, no_color=IsFlagged),
                             doing="force-unlock")
        if code != 0:
            raise self._fail("force-unlock", out, code)

    def state_resources(self) -> list[str]:
        code, out = self.run(self.command("state list"), doing="state list")
        if code != 0:
            return []
        return [line for line in out.splitlines() if line.strip()]


# -- init: whether a repeat can be left out -------------------------------------

def init_outputs(data_dir: Path) -> list[str]:
    """The files a successful init leaves in ``data_dir`` that later commands need: the backend's
    settings, the module manifest, each provider's installed directory (a link into the plugin
    cache, which can vanish on its own)."""
    made = [data_dir / "terraform.tfstate", data_dir / "modules" / "modules.json",
            *sorted((data_dir / "providers").glob("*/*/*/*/*"))]
    return [str(p.relative_to(data_dir)) for p in made if p.exists()]


def init_current(recorded: dict | None, inputs: dict, data_dir: Path) -> bool:
    """Whether an init recorded as ``recorded`` still holds: the same inputs, and everything it
    made still there (``exists`` follows a provider's link into the cache)."""
    if not isinstance(recorded, dict) or recorded.get("inputs") != inputs:
        return False
    made = recorded.get("made")
    return (isinstance(made, list) and "terraform.tfstate" in made
            and any(name.startswith("providers/") for name in made)
            and all((data_dir / name).exists() for name in made))


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, value) -> None:
    """Atomically (a killed write leaves the old file or none, never half of one)."""
    try:
        write_atomically(path, json.dumps(value, indent=1).encode())
    except OSError:
        pass


# -- failures: what a person reads ---------------------------------------------

def killed_by(code: int | None) -> int | None:
    """The signal that ended Terraform: a negative return code, or 128+N from a wrapper script."""
    if code is None:
        return None
    if code < 0:
        return -code
    if 128 < code < 128 + 32 and code - 128 in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP,
                                                signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS, signal.SIGQUIT):
        return code - 128
    return None


ERRORED_STATE = "errored.tfstate"


def state_unsaved(output: str) -> bool:
    """Whether Terraform says it could not write the state to its backend (its endpoint went
    away mid-apply, for one): what it created is then recorded nowhere but ``errored.tfstate``."""
    return "Failed to save state" in output or "Failed to persist state" in output or ERRORED_STATE in output


_CREATED = (
    # the lock object's JSON (RFC 3339, nanoseconds): 2026-11-28T10:15:30.123456789Z
    re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$"),
    # Terraform's "Lock Info:" block (Go's time.String): 2026-11-28 10:15:30.123 +0000 UTC
    re.compile(r"^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(\.\d+)? ([+-]\d\d)(\d\d)(?: \S+)?$"),
)


def lock_created(info: dict) -> float | None:
    """When a state lock was taken (its ``Created``), as epoch seconds; None if unreadable."""
    text = str(info.get("Created") or "").strip()
    for pattern in _CREATED:
        m = pattern.match(text)
        if not m:
            continue
        day, clock, fraction = m.group(1), m.group(2), (m.group(3) or ".0")[:7]
        zone = "+00:00" if m.group(4) == "Z" else (m.group(4) if len(m.groups()) == 4
                                                   else f"{m.group(4)}:{m.group(5)}")
        try:
            return datetime.fromisoformat(f"{day}T{clock}{fraction}{zone}").timestamp()
        except ValueError:
            return None
    return None


def lock_info(output: str) -> dict:
    """The "Lock Info:" block of a state lock error (ID, Path, Operation, Who, Created...)."""
    info: dict[str, str] = {}
    inside = False
    for raw in output.splitlines():
        line = raw.strip().strip("│").strip()
        if line.startswith("Lock Info:"):
            inside = True
            continue
        if inside:
            key, sep, value = line.partition(":")
            if not sep or " " in key.strip():
                if info:
                    break
                continue
            info[key.strip()] = value.strip()
    return info


def describe_lock(info: dict) -> str:
    parts = [f"lock id {info.get('ID', '?')}"]
    if info.get("Operation"):
        parts.append(info["Operation"].replace("OperationType", "").lower() or "?")
    if info.get("Who"):
        parts.append(f"by {info['Who']}")
    if info.get("Created"):
        parts.append(f"since {info['Created']}")
    return ", ".join(parts)


def explain_failure(env: Environment, doing: str, code: int | None, output: str, binary_path: str = "terraform",
                    data_dir: Path | None = None) -> str:
    """One line for a failed Terraform command: pure, so each case is a table row in the tests."""
    name = env.name
    signum = killed_by(code)
    if signum is not None:
        try:
            signame = signal.Signals(signum).name
        except ValueError:
            signame = f"signal {signum}"
        if doing not in ("apply", "destroy"):
            return f"terraform {doing} for {name} was killed by {signame} (signal {signum}); run the command again"
        if env.emulator:
            return (f"terraform {doing} for {name} was killed by {signame} (signal {signum}) before it finished; "
                    f"run the command again: ship finds what the killed run left and rebuilds {name}'s stack")
        return (f"terraform {doing} for {name} was killed by {signame} (signal {signum}) before it finished, "
                "so its state may miss resources it created and its lock may remain: clear the lock with "
                f"`inv infra.unlock --env={name}`, then run `inv infra.plan --env={name}` and bring any resource "
                "it wants to create that already exists into the state with `terraform import`")
    if doing == "apply" and state_unsaved(output):
        errors = [ln.strip("│ ").strip() for ln in output.splitlines() if ln.strip("│ ").startswith("Error")]
        detail = next((e for e in errors if "save state" not in e and "persist state" not in e),
                      errors[0] if errors else "")
        if env.emulator:
            return (f"terraform apply for {name} could not save its state ({detail or 'the endpoint went away'}); "
                    f"run the command again: ship finds what the apply left and rebuilds {name}'s stack")
        where = Path(data_dir) / ERRORED_STATE if data_dir else Path(ERRORED_STATE)
        return (f"terraform apply for {name} could not save its state ({detail or 'the backend failed'}); what it "
                f"applied is recorded in {where}: once the backend answers, push it with `terraform state push "
                f"{where}` (in terraform/, with the backend of {name}), then run `inv infra.plan --env={name}`")
    if "Error acquiring the state lock" in output:
        return (f"terraform {doing} for {name}: the state is locked ({describe_lock(lock_info(output))}); if no "
                f"Terraform runs for {name} any more (a killed run leaves its lock behind), clear it with "
                f"`inv infra.unlock --env={name}`")
    if not output.strip():
        return (f"terraform {doing} for {name} exited with status {code} and printed nothing: check the Terraform "
                f"binary ({binary_path}: does `{binary_path} version` work?), or set TF_BINARY")
    lowered = output.lower()
    if "read-only file system" in lowered or ("permission denied" in lowered and data_dir and str(data_dir) in output):
        return (f"terraform {doing} for {name} cannot write its data directory {data_dir} (read-only file system): "
                "make it writable or point SHIP_STATE_DIR at a writable directory")
    if "no space left on device" in lowered:
        return f"terraform {doing} for {name} failed: the disk is full (no space left on device); free some space"
    errors = [ln.strip("│ ").strip() for ln in output.splitlines() if ln.strip("│ ").startswith("Error")]
    detail = errors[0] if errors else output.strip().splitlines()[-1]
    hint = ""
    if "NoSuchBucket" in output or "bucket does not exist" in output:
        hint = f"; run `inv bootstrap --env={name}` to create the state bucket"
    elif "already exists" in output:
        hint = (f"; resources of {name} exist that its state does not record (an interrupted apply?): the next "
                f"`inv deploy --env={name}` rebuilds the stack" if env.emulator else
                f"; a resource exists that {name}'s state does not record: bring it in with `terraform import` "
                "or delete it, then apply again")
    return f"terraform {doing} failed for {name}: {detail}{hint}"


# -- the apply journal: did the last apply end with Terraform saving its state? ---

JOURNAL = "apply-journal.json"


def journal_begin(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / JOURNAL).write_text(json.dumps({"pid": os.getpid(), "started": time.time()}))


def journal_end(data_dir: Path) -> None:
    (data_dir / JOURNAL).unlink(missing_ok=True)


def unfinished_apply(data_dir: Path) -> dict | None:
    """What the journal says about an apply that did not end cleanly (None: all applies ended)."""
    try:
        data = json.loads((data_dir / JOURNAL).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _processes_in(data_dir: Path) -> list[tuple[int, int, str]]:
    """(pid, parent pid, program name) of processes started with ``TF_DATA_DIR=data_dir`` (Linux)."""
    needle = f"TF_DATA_DIR={data_dir}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if needle not in (proc / "environ").read_bytes().split(b"\0"):
                continue
            program = Path((proc / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")).name
        except OSError:
            continue
        ppid = procfs.ppid(proc.name)
        if ppid is None:
            continue
        found.append((int(proc.name), ppid, program))
    return found


def live_terraform(data_dir: Path) -> list[int]:
    """Pids of Terraform processes still working in ``data_dir`` (provider plugins left running by a
    killed Terraform do not count: they hold no lock); stops those orphaned plugins."""
    procs = _processes_in(data_dir)
    live = [pid for pid, _, program in procs if not program.startswith("terraform-provider-")]
    for pid, ppid, program in procs:
        if program.startswith("terraform-provider-") and ppid not in live:
            try:
                os.kill(pid, signal.SIGKILL)  # its Terraform was killed: nothing will ever talk to it
            except OSError:
                pass
    return live


def version() -> str:
    out = subprocess.run([binary(), "version", "-json"], capture_output=True, text=True)
    try:
        return json.loads(out.stdout)["terraform_version"]
    except (ValueError, KeyError):
        return out.stdout.strip().splitlines()[0] if out.stdout else "unknown"


if __name__ == "__main__":  # pragma: no cover - a debugging aid
    print(version(), file=sys.stderr)
