"""ship.applied: when a deploy may leave Terraform out (the fingerprint of the last successful
apply), and what each part of the fingerprint notices."""

import json
from pathlib import Path

import pytest

from ship import applied, terraform
from ship.config import load as load_environment

PARTS = {"configuration": "c1", "settings": "s1", "variables": "v1", "process": "p1", "backend": "b1",
         "state": "lineage-1:7", "local_cloud": "cloud-1"}
RECORD = {"version": applied.VERSION, **PARTS}


def _with(**changes):
    return {**PARTS, **changes}


@pytest.mark.parametrize("recorded, current, unfinished, force, skip, reason", [
    (RECORD, PARTS, False, False, True, "nothing Terraform reads changed"),
    # anything that changes what Terraform would do runs it
    (RECORD, _with(configuration="c2"), False, False, False, "the Terraform configuration changed"),
    (RECORD, _with(settings="s2"), False, False, False, "the environment's settings changed"),
    (RECORD, _with(variables="v2"), False, False, False, "Terraform's variables changed"),
    (RECORD, _with(process="p2"), False, False, False, "the Terraform binary or its process environment changed"),
    (RECORD, _with(backend="b2"), False, False, False, "the state backend changed"),
    (RECORD, _with(state="lineage-1:8"), False, False, False, "the state changed since the last apply"),
    (RECORD, _with(state="lineage-2:7"), False, False, False, "the state changed since the last apply"),
    (RECORD, _with(local_cloud="cloud-2"), False, False, False, "the local cloud's state was reset"),
    # anything unknown runs it
    (RECORD, _with(state=None), False, False, False, "cannot tell whether state changed"),
    (RECORD, _with(configuration=None), False, False, False, "cannot tell whether configuration changed"),
    (RECORD, _with(local_cloud=""), False, False, False, "cannot tell whether local cloud changed"),
    ({k: v for k, v in RECORD.items() if k != "backend"}, PARTS, False, False, False, "the state backend changed"),
    (None, PARTS, False, False, False, "no record of a successful apply"),
    ({}, PARTS, False, False, False, "no record of a successful apply"),
    (["not", "a", "record"], PARTS, False, False, False, "no record of a successful apply"),
    ({**RECORD, "version": applied.VERSION + 1}, PARTS, False, False, False, "no record of a successful apply"),
    # an apply that did not finish, or a person who asks, runs it whatever the record says
    (RECORD, PARTS, True, False, False, "the last apply did not finish"),
    (RECORD, PARTS, False, True, False, "asked to run Terraform"),
])
def test_decide(recorded, current, unfinished, force, skip, reason):
    decision = applied.decide(recorded, current, unfinished=unfinished, force=force)
    assert decision.skip is skip
    assert decision.reason.startswith(reason)


@pytest.mark.parametrize("state, part", [
    ({"lineage": "abc", "serial": 12, "outputs": {}}, "abc:12"),
    ({"lineage": "abc", "serial": 0}, "abc:0"),
    ({"lineage": "abc"}, None),
    ({"lineage": "", "serial": 3}, None),
    ({"lineage": "abc", "serial": "3"}, None),
    (None, None),
    ([], None),
])
def test_state_part(state, part):
    assert applied.state_part(state) == part


def _tree(root: Path, files: dict) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize("change, differs", [
    (lambda r: (r / "main.tf").write_text('resource "x" "y" {}\n'), True),
    (lambda r: (r / "modules/ecs/main.tf").write_text("# edited\n"), True),
    (lambda r: (r / "modules/ecs/extra.tf").write_text(""), True),
    (lambda r: (r / "modules/ecs/main.tf").rename(r / "modules/ecs/other.tf"), True),
    (lambda r: (r / ".terraform.lock.hcl").write_text("provider 2\n"), True),
    (lambda r: (r / "local.auto.tfvars").write_text('x = 1\n'), True),
    # Terraform's own working files and leftovers do not change what it applies
    (lambda r: _tree(r, {".terraform/providers/p": "binary"}), False),
    (lambda r: _tree(r, {"terraform.tfstate": "{}", "terraform.tfstate.backup": "{}"}), False),
    (lambda r: (r / "environments.yaml").write_text("hashed apart\n"), False),
])
def test_tree_digest_notices_what_terraform_reads(tmp_path, change, differs):
    root = _tree(tmp_path, {"main.tf": "", "modules/ecs/main.tf": "", ".terraform.lock.hcl": "provider 1\n",
                            "environments.yaml": "local: {}\n"})
    leave_out = (root / "environments.yaml",)
    before = applied.tree_digest(root, leave_out)
    change(root)
    assert (applied.tree_digest(root, leave_out) != before) is differs


@pytest.fixture
def local_env(tmp_path, monkeypatch):
    monkeypatch.setenv("SHIP_STATE_DIR", str(tmp_path / "state"))
    return load_environment("local")


def test_fingerprint_follows_the_image_settings_and_state(local_env, tmp_path, monkeypatch):
    state = {"lineage": "l-1", "serial": 4}
    first = applied.fingerprint(local_env, {"image": "repo@sha256:aa"}, state, "cloud-1")
    assert all(first[p] for p in applied.PARTS)
    assert applied.fingerprint(local_env, {"image": "repo@sha256:aa"}, state, "cloud-1") == first
    assert applied.fingerprint(local_env, {"image": "repo@sha256:bb"}, state, "cloud-1")["variables"] \
        != first["variables"]
    assert applied.fingerprint(local_env, {"image": "repo@sha256:aa"}, {**state, "serial": 5},
                               "cloud-1")["state"] != first["state"]
    monkeypatch.setenv("TF_VAR_desired_count", "3")
    assert applied.fingerprint(local_env, {"image": "repo@sha256:aa"}, state, "cloud-1")["process"] \
        != first["process"]
    monkeypatch.delenv("TF_VAR_desired_count")
    settings = tmp_path / "environments.yaml"
    from ship import paths
    settings.write_text(paths.environments_file().read_text() + "\n# edited\n")
    monkeypatch.setenv("SHIP_ENVIRONMENTS_FILE", str(settings))
    moved = applied.fingerprint(local_env, {"image": "repo@sha256:aa"}, state, "cloud-1")
    assert moved["settings"] != first["settings"]
    assert applied.decide({"version": applied.VERSION, **first}, moved).skip is False


def test_record_round_trip_and_forgotten_by_any_apply(local_env):
    parts = dict(PARTS)
    applied.record(local_env, parts)
    assert applied.decide(applied.recorded(local_env), parts).skip
    terraform.Runner(local_env).forget_applied()      # what apply and destroy do before they run
    assert applied.recorded(local_env) is None
    applied.record(local_env, {**parts, "state": None})   # an incomplete fingerprint is not recorded
    assert applied.recorded(local_env) is None


def test_a_corrupt_record_runs_terraform(local_env):
    applied.record(local_env, dict(PARTS))
    path = Path(terraform.Runner(local_env).data_dir) / terraform.APPLIED_RECORD
    path.write_text("{not json")
    assert applied.decide(applied.recorded(local_env), PARTS).reason == "no record of a successful apply"
    path.write_text(json.dumps([1, 2]))
    assert applied.recorded(local_env) is None
