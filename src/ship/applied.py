"""Whether a deploy may skip Terraform: the fingerprint of the last successful apply.

A no-op ``inv deploy`` on the local cloud spends most of its time in Terraform (init,
a refresh of every resource, an empty plan). After each successful full apply ship
records, beside the environment's Terraform data (``<state>/terraform/<env>/applied.json``),
a fingerprint of everything that decides what Terraform would do:

* ``configuration``: every file under terraform/ (modules, ``*.tf``, the provider lock);
* ``settings``: the environments file (environments.yaml or SHIP_ENVIRONMENTS_FILE);
* ``variables``: the variables ship passes (the environment, the image);
* ``process``: the Terraform binary (path, size, mtime) and the TF_*/AWS_* variables of its
  process (endpoint, region, CLI config, TF_VAR_*);
* ``backend``: the state backend's settings;
* ``state``: the state's lineage and serial, read from the state bucket: any other apply,
  import or ``terraform state`` command changes them;
* ``local_cloud``: the lineage of the local cloud's saved state (a reset local cloud forgot the stack).

A warm deploy on the local cloud skips Terraform when every part is present and equal to
the record (``decide``, pure). Anything unknown or unreadable runs Terraform. Any apply or
destroy forgets the record before it starts (a killed apply leaves none), so only a
finished, successful apply writes one.

What the fingerprint cannot see: drift, i.e. a change made to the stack outside Terraform
(an AWS API call or the console changing or deleting a resource Terraform manages).
Only Terraform's refresh finds that: ``inv infra.plan`` shows it and ``inv infra.apply``
always runs Terraform and reconciles it (then records a new fingerprint). On AWS, where
other people and tools change stacks, deploys always run Terraform.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import botocore.exceptions

from ship import paths, terraform
from ship.config import Environment
from ship.fsutil import write_atomically

VERSION = 1
RECORD = terraform.APPLIED_RECORD
PARTS = ("configuration", "settings", "variables", "process", "backend", "state", "local_cloud")
CHANGED = {
    "configuration": "the Terraform configuration changed",
    "settings": "the environment's settings changed",
    "variables": "Terraform's variables changed",
    "process": "the Terraform binary or its process environment changed",
    "backend": "the state backend changed",
    "state": "the state changed since the last apply",
    "local_cloud": "the local cloud's state was reset",
}
SKIPPED_DIRS = {".terraform", ".git", "__pycache__"}


@dataclass(frozen=True)
class Decision:
    skip: bool
    reason: str


def decide(recorded: dict | None, current: dict, unfinished: bool = False, force: bool = False) -> Decision:
    """Skip Terraform only when a record of a successful apply matches every part of ``current``."""
    if force:
        return Decision(False, "asked to run Terraform")
    if unfinished:
        return Decision(False, "the last apply did not finish")
    if not isinstance(recorded, dict) or recorded.get("version") != VERSION:
        return Decision(False, "no record of a successful apply")
    for part in PARTS:
        value = current.get(part)
        if not value:
            return Decision(False, f"cannot tell whether {part.replace('_', ' ')} changed")
        if recorded.get(part) != value:
            return Decision(False, CHANGED[part])
    return Decision(True, "nothing Terraform reads changed since the last successful apply")


# -- the parts (effectful: files, the process environment) ---------------------------------

def _digest(value) -> str:
    if isinstance(value, bytes):
        return hashlib.sha256(value).hexdigest()
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def tree_digest(root: Path, leave_out: tuple[Path, ...] = ()) -> str | None:
    """One digest of every file's relative path and bytes under ``root`` (None if unreadable)."""
    digest = hashlib.sha256()
    left = {p.resolve() for p in leave_out}
    try:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS)
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if path.resolve() in left or name.endswith((".tfstate", ".tfstate.backup")):
                    continue
                digest.update(str(path.relative_to(root)).encode() + b"\0")
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    except OSError:
        return None
    return digest.hexdigest()


def _file_digest(path: Path) -> str | None:
    try:
        return _digest(path.read_bytes())
    except OSError:
        return None


def process_digest(tf: terraform.Runner) -> str | None:
    """The Terraform binary (path, size, mtime) and the TF_*/AWS_* variables of its process."""
    try:
        binary = Path(terraform.binary())
        stat = binary.stat()
        env = tf.process_env()
    except (OSError, ValueError):
        return None
    chosen = {k: v for k, v in env.items() if k.startswith(("TF_", "AWS_"))}
    return _digest({"binary": [str(binary), stat.st_size, stat.st_mtime_ns], "env": chosen})


def state_part(state: dict | None) -> str | None:
    """The state's lineage and serial (from the state object Terraform keeps in the bucket)."""
    if not isinstance(state, dict) or not state.get("lineage") or not isinstance(state.get("serial"), int):
        return None
    return f"{state['lineage']}:{state['serial']}"


def fingerprint(env: Environment, variables: dict, state: dict | None, local_cloud: str | None) -> dict:
    """The parts of what Terraform would read now (a part is None when it cannot be read)."""
    tf = terraform.Runner(env)
    settings = paths.environments_file()
    return {
        "configuration": tree_digest(paths.terraform_dir(), leave_out=(settings,)),
        "settings": _file_digest(settings),
        "variables": _digest(tf.variables(variables)),
        "process": process_digest(tf),
        "backend": _digest(tf.backend_config()),
        "state": state_part(state),
        "local_cloud": (local_cloud or None) if env.emulator else "aws",
    }


def read_state(session, env: Environment) -> dict | None:
    """Terraform's state object in the environment's bucket, parsed (None if absent or unreadable)."""
    return fetch_state(session, env)[1]


def fetch_state(session, env: Environment) -> tuple[bool, dict | None]:
    """(True, Terraform's state object in the environment's bucket, parsed; None when there is no
    object yet), or (False, None) when it could not be read or is not a JSON object."""
    try:
        body = session.s3.get_object(Bucket=env.state_bucket, Key=env.state_key)["Body"].read()
    except botocore.exceptions.ClientError as exc:
        return exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"), None
    except Exception:  # noqa: BLE001 - any failure to read it means: ask Terraform
        return False, None
    try:
        state = json.loads(body)
    except ValueError:
        return False, None
    return (True, state) if isinstance(state, dict) else (False, None)


# -- the record ---------------------------------------------------------------------------

def _path(env: Environment) -> Path:
    return paths.state_dir() / "terraform" / env.name / RECORD


def recorded(env: Environment) -> dict | None:
    try:
        data = json.loads(_path(env).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def record(env: Environment, parts: dict) -> None:
    """Write the record atomically (only complete fingerprints: a missing part runs Terraform anyway)."""
    if not all(parts.get(p) for p in PARTS):
        forget(env)
        return
    path = _path(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps({"version": VERSION, **{p: parts[p] for p in PARTS}}, indent=1).encode())


def forget(env: Environment) -> None:
    try:
        _path(env).unlink(missing_ok=True)
    except OSError:
        pass
