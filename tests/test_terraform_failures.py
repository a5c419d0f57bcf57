"""How a failed Terraform is reported: killed (with its signal), a stale state lock (with its id),
a binary that prints nothing, a read-only state directory. Pure table first, then real processes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ship import config, terraform
from ship.errors import ShipError

LOCAL, STAGING = config.load("local"), config.load("staging")

LOCK_ERROR = textwrap.dedent("""\
    ╷
    │ Error: Error acquiring the state lock
    │
    │ Error message: operation error S3: PutObject, https response error StatusCode: 412, api error
    │ PreconditionFailed: At least one of the pre-conditions you specified did not hold
    │ Lock Info:
    │   ID:        5c0f7d4e-3b1a-4d7e-9f00-1234567890ab
    │   Path:      hello-tfstate-local/env/local/terraform.tfstate
    │   Operation: OperationTypeApply
    │   Who:       dev@laptop
    │   Version:   1.11.4
    │   Created:   2026-11-28 08:00:00.123 +0000 UTC
    │   Info:
    │
    │ Terraform acquires a state lock to protect the state from being written
    │ by multiple users at the same time.
    ╵
    """)


UNSAVED = textwrap.dedent("""\
    ╷
    │ Error: Failed to save state
    │
    │ Error saving state: failed to upload state: dial tcp 127.0.0.1:4566: connect: connection refused
    ╵
    ╷
    │ Error: Failed to persist state to backend
    │
    │ The error shown above has prevented Terraform from writing the updated state to the configured backend.
    │ To allow for recovery, the state has been written to the file "errored.tfstate" in the current working
    │ directory.
    ╵
    """)


@pytest.mark.parametrize("env, doing, code, output, expected", [
    (LOCAL, "apply", -9, "module.network.aws_vpc.this: Still creating... [10s elapsed]\n",
     "terraform apply for local was killed by SIGKILL (signal 9) before it finished; run the command again: "
     "ship finds what the killed run left and rebuilds local's stack"),
    (STAGING, "apply", -9, "Still creating...\n",
     "terraform apply for staging was killed by SIGKILL (signal 9) before it finished, so its state may miss "
     "resources it created and its lock may remain: clear the lock with `inv infra.unlock --env=staging`, then run "
     "`inv infra.plan --env=staging` and bring any resource"),
    (LOCAL, "plan", -15, "Refreshing state...\n",
     "terraform plan for local was killed by SIGTERM (signal 15); run the command again"),
    (LOCAL, "apply", 137, "Still creating...\n", "was killed by SIGKILL (signal 9)"),  # through a wrapper script
    (LOCAL, "apply", 1, LOCK_ERROR,
     "terraform apply for local: the state is locked (lock id 5c0f7d4e-3b1a-4d7e-9f00-1234567890ab, apply, by "
     "dev@laptop, since 2026-11-28 08:00:00.123 +0000 UTC); if no Terraform runs for local any more (a killed run "
     "leaves its lock behind), clear it with `inv infra.unlock --env=local`"),
    (LOCAL, "init", 3, "", "terraform init for local exited with status 3 and printed nothing: check the Terraform "
                           "binary (/bin/tf: does `/bin/tf version` work?), or set TF_BINARY"),
    (LOCAL, "apply", 1, "│ Error: creating ELBv2 Load Balancer (hello-local): DuplicateLoadBalancerName: already "
                        "exists\n", "the next `inv deploy --env=local` rebuilds the stack"),
    (STAGING, "apply", 1, "│ Error: creating ECR Repository (hello-staging): RepositoryAlreadyExistsException: "
                          "already exists\n", "bring it in with `terraform import` or delete it"),
    (LOCAL, "init", 1, "│ Error: Failed to update module manifest\n│ open x: read-only file system\n",
     "cannot write its data directory"),
    (LOCAL, "init", 1, "│ Error: Failed to get existing workspaces: S3 bucket does not exist. NoSuchBucket\n",
     "run `inv bootstrap --env=local` to create the state bucket"),
    # the endpoint went away mid-apply (the local cloud was stopped): what it made is in no state
    (LOCAL, "apply", 1, UNSAVED,
     "terraform apply for local could not save its state (Error saving state: failed to upload state: "
     "dial tcp 127.0.0.1:4566: connect: connection refused); run the command again: ship finds what the apply "
     "left and rebuilds local's stack"),
    (STAGING, "apply", 1, UNSAVED,
     "what it applied is recorded in /state/terraform/local/errored.tfstate: once the backend answers, push it "
     "with `terraform state push /state/terraform/local/errored.tfstate`"),
])
def test_explain_failure(env, doing, code, output, expected):
    line = terraform.explain_failure(env, doing, code, output, "/bin/tf", "/state/terraform/local")
    assert expected in line and "\n" not in line, line
    assert "Still creating" not in line


def test_lock_info_reads_terraforms_block():
    assert terraform.lock_info(LOCK_ERROR) == {
        "ID": "5c0f7d4e-3b1a-4d7e-9f00-1234567890ab", "Path": "hello-tfstate-local/env/local/terraform.tfstate",
        "Operation": "OperationTypeApply", "Who": "dev@laptop", "Version": "1.11.4",
        "Created": "2026-11-28 08:00:00.123 +0000 UTC", "Info": ""}


def _fake_terraform(tmp_path, monkeypatch, body: str):
    exe = tmp_path / "bin" / "terraform"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\n" + body)
    exe.chmod(0o755)
    monkeypatch.setenv("TF_BINARY", str(exe))
    monkeypatch.setenv("SHIP_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SHIP_TF_PROVIDER_MIRROR", "")
    return terraform.Runner(LOCAL, echo=lambda line: None)


def test_a_killed_terraform_is_reported_killed_and_its_apply_stays_unfinished(tmp_path, monkeypatch):
    runner = _fake_terraform(tmp_path, monkeypatch, 'echo "aws_vpc.this: Still creating... [10s elapsed]"\n'
                                                    "kill -KILL $$\n")
    with pytest.raises(ShipError) as err:
        runner.apply({"image": "x"})
    assert str(err.value).startswith("terraform apply for local was killed by SIGKILL (signal 9) before it finished")
    assert terraform.unfinished_apply(runner.data_dir) is not None  # the next run looks for what it left


def test_an_apply_that_ends_clears_its_journal(tmp_path, monkeypatch):
    runner = _fake_terraform(tmp_path, monkeypatch, 'echo "│ Error: something"\nexit 1\n')
    with pytest.raises(ShipError, match="terraform apply failed for local: Error: something"):
        runner.apply({"image": "x"})
    assert terraform.unfinished_apply(runner.data_dir) is None


def test_an_apply_that_could_not_save_its_state_stays_unfinished(tmp_path, monkeypatch):
    runner = _fake_terraform(tmp_path, monkeypatch, 'printf "%s" "$UNSAVED"\n'
                                                    'echo \'{"version": 4}\' > errored.tfstate\nexit 1\n')
    monkeypatch.setenv("UNSAVED", UNSAVED)
    runner.workdir = tmp_path / "terraform"            # Terraform's working directory (the repository's terraform/)
    runner.workdir.mkdir()
    with pytest.raises(ShipError, match="terraform apply for local could not save its state"):
        runner.apply({"image": "x"})
    assert terraform.unfinished_apply(runner.data_dir) is not None   # the next run looks for what it made
    assert not (runner.workdir / "errored.tfstate").exists()
    assert (runner.data_dir / "errored.tfstate").read_text().strip() == '{"version": 4}'


@pytest.mark.parametrize("created, seconds", [
    ("2026-11-28T10:15:30.123456789Z", 1795860930.123456),         # the lock object's JSON
    ("2026-11-28T11:15:30+01:00", 1795860930.0),
    ("2026-11-28 10:15:30.123 +0000 UTC", 1795860930.123),         # Terraform's "Lock Info:" block
    ("2026-11-28 11:15:30 +0100 CET", 1795860930.0),
    ("yesterday", None),
    ("", None),
])
def test_when_a_lock_was_taken(created, seconds):
    assert terraform.lock_created({"Created": created}) == seconds


class _S3:
    """The two calls the stale-lock check makes, on one object."""

    def __init__(self, body: bytes | None):
        self.body, self.deleted = body, []

    def get_object(self, Bucket, Key):
        import io

        import botocore.exceptions

        if self.body is None:
            raise botocore.exceptions.ClientError({"Error": {"Code": "NoSuchKey"}}, "GetObject")
        return {"Body": io.BytesIO(self.body)}

    def delete_object(self, Bucket, Key):
        self.deleted.append(Key)
        self.body = None


LOCK = {"ID": "9a1", "Operation": "OperationTypeApply", "Who": "dev@laptop", "Created": "2026-11-28T10:00:00Z"}
BEFORE, AFTER = 1795860000.0 - 60, 1795860000.0 + 60    # the local cloud started before / after the lock


@pytest.mark.parametrize("env, started_at, dry_run, outcome", [
    # taken against an earlier local cloud: its run ended with it, and its saved state kept the lock
    (LOCAL, AFTER, False, "cleared the state lock of local (lock id 9a1, apply, by dev@laptop, since "
                          "2026-11-28T10:00:00Z): its run ended when the local cloud that served it stopped"),
    (LOCAL, AFTER, True, "error: the state of local is locked (lock id 9a1, apply, by dev@laptop, since "
                         "2026-11-28T10:00:00Z) by a run that ended when the local cloud stopped; a run without "
                         "--dry clears it"),
    # taken while this local cloud serves, by a run that is gone: named, with what to do (main's rule)
    (LOCAL, BEFORE, False, "error: the state of local is locked (lock id 9a1, apply, by dev@laptop, since "
                           "2026-11-28T10:00:00Z) but no command works on local now: a killed run left it; clear "
                           "it with `inv infra.unlock --env=local`"),
    (LOCAL, None, False, "clear it with `inv infra.unlock --env=local`"),
    (STAGING, AFTER, False, None),          # on AWS another machine may hold it: Terraform decides
])
def test_a_stale_lock_on_the_emulator(tmp_path, monkeypatch, env, started_at, dry_run, outcome):
    import json
    import types

    from ship import stack

    monkeypatch.setenv("SHIP_STATE_DIR", str(tmp_path))
    s3 = _S3(json.dumps(LOCK).encode())
    said: list[str] = []
    try:
        stack.settle_stale_lock(env, types.SimpleNamespace(s3=s3), {"started_at": started_at}, said.append,
                                dry_run=dry_run)
    except ShipError as err:
        said.append(f"error: {err}")
    if outcome is None:
        assert said == [] and s3.deleted == []
        return
    assert len(said) == 1 and outcome in said[0], said
    assert s3.deleted == (["env/local/terraform.tfstate.tflock"] if said[0].startswith("cleared") else [])


def test_a_silent_binary_is_named(tmp_path, monkeypatch):
    runner = _fake_terraform(tmp_path, monkeypatch, "exit 3\n")
    with pytest.raises(ShipError) as err:
        runner.init()
    assert f"terraform init for local exited with status 3 and printed nothing: check the Terraform binary " \
           f"({tmp_path / 'bin' / 'terraform'}" in str(err.value)


def _unshare_works() -> bool:
    return bool(shutil.which("unshare")) and subprocess.run(["unshare", "-Urm", "true"]).returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="needs unprivileged user namespaces (unshare -Urm)")
def test_a_read_only_state_directory_is_reported_as_such(tmp_path):
    """Terraform's own data directory on a read-only mount (a private mount namespace)."""
    state = tmp_path / "state"
    (state / "terraform" / "local").mkdir(parents=True)
    script = ("from ship import config, terraform\n"
              "from ship.errors import ShipError\n"
              "try:\n    terraform.Runner(config.load('local'), echo=print).init()\n"
              "except ShipError as err:\n    print('ERROR', err)\n")
    env = dict(os.environ, SHIP_STATE_DIR=str(state))
    result = subprocess.run(
        ["unshare", "-Urm", "sh", "-c", 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && '
         'exec "$@"', "sh", str(state), sys.executable, "-c", script], env=env, capture_output=True, text=True,
        timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"ERROR {state / 'terraform' / 'local'} is on a read-only file system: ship keeps its state there" \
        in result.stdout, result.stdout
    assert "module manifest" not in result.stdout


def test_killed_by():
    assert terraform.killed_by(-signal.SIGKILL) == signal.SIGKILL
    assert terraform.killed_by(128 + signal.SIGTERM) == signal.SIGTERM
    assert terraform.killed_by(1) is None and terraform.killed_by(0) is None and terraform.killed_by(None) is None


def test_an_unfinished_apply_on_aws_says_what_to_do(tmp_path, monkeypatch):
    from ship import recover

    monkeypatch.setenv("SHIP_STATE_DIR", str(tmp_path))
    data_dir = tmp_path / "terraform" / "staging"
    terraform.journal_begin(data_dir)
    said = []
    recover.after_unfinished_apply(STAGING, session=None, echo=said.append)  # no AWS call: ship never guesses there
    assert said == ["note: the last apply of staging did not finish; if Terraform now says a resource already "
                    "exists, bring it into the state with `terraform import` (or delete it), and clear a stale lock "
                    "with `inv infra.unlock --env=staging`"]
    assert terraform.unfinished_apply(data_dir) is not None  # until an apply ends


@pytest.mark.skipif(not _unshare_works(), reason="needs unprivileged user namespaces (unshare -Urm)")
def test_a_read_only_state_directory_through_the_menu(tmp_path):
    from helpers import ROOT
    from ship.net import free_port

    state = tmp_path / "state"
    state.mkdir()
    inv = str(Path(sys.executable).parent / "inv")
    env = dict(os.environ, SHIP_STATE_DIR=str(state), SHIP_LOCAL_PORT=str(free_port()))
    result = subprocess.run(
        ["unshare", "-Urm", "sh", "-c", 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && '
         'exec "$@"', "sh", str(state), inv, "infra.plan", "--env=local"], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0] == (f"error: the state directory {state} is not writable (Read-only file system): make it "
                        "writable or point SHIP_STATE_DIR at a writable directory")
