"""The coverage table in the docs (docs/localcloud-coverage.md) is generated from the code and current."""

from __future__ import annotations

import re

import pytest

from ship import oci
from ship.localcloud import emulator
from ship.localcloud.emulator import coverage


@pytest.fixture(scope="module", autouse=True)
def installed(tmp_path_factory):
    emulator.install(oci.BlobStore(tmp_path_factory.mktemp("blobs")))


def _ship_controlled(text: str) -> tuple[list[str], set[str]]:
    """The parts of the table ship decides: the 'acted on' lines and the operations it patches."""
    acted = [line for line in text.splitlines() if line.startswith("- **acted on**")]
    return acted, set(re.findall(r"([A-Za-z0-9]+)\*", text))


def test_the_committed_table_is_current():
    text = coverage.render(coverage.coverage())
    committed = coverage.DOC.read_text()
    hint = "run `python -m ship.localcloud.emulator.coverage --write` and commit docs/localcloud-coverage.md"
    if coverage.generated_versions(committed) == coverage.generated_versions(text):
        assert committed == text, hint
    else:
        # Another moto or botocore lists other operations; what ship controls must still agree.
        assert _ship_controlled(committed) == _ship_controlled(text), hint


def test_the_table_tells_the_three_kinds_apart():
    covs = {c.service: c for c in coverage.coverage()}
    assert "FilterLogEvents" in covs["logs"].acted_on and "FilterLogEvents" in covs["logs"].patched
    assert "ListTagsForResource" in covs["application-autoscaling"].stored
    assert "ListTagsForResource" in covs["application-autoscaling"].patched
    assert "ListServiceDeployments" in covs["ecs"].fails_fast
    assert "DescribeTargetHealth" in covs["elbv2"].acted_on and "DescribeTargetHealth" in covs["elbv2"].patched
    # The listeners follow rules and load balancer attributes; listener attributes are only kept.
    assert {"CreateRule", "SetRulePriorities", "ModifyLoadBalancerAttributes"} <= set(covs["elbv2"].acted_on)
    assert "ModifyListenerAttributes" in covs["elbv2"].stored
    for c in covs.values():
        assert not (set(c.acted_on) & set(c.stored)) and not (set(c.stored) & set(c.fails_fast))


def test_check_mode_reports_a_stale_table(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "coverage.md"
    stale.write_text("# old\n")
    monkeypatch.setattr(coverage, "DOC", stale)
    assert coverage.main(["--check"]) == 1
    assert "is stale" in capsys.readouterr().err
    assert coverage.main(["--write"]) == 0
    assert coverage.main(["--check"]) == 0


def test_every_emulator_module_declares_operations_of_its_service():
    import importlib

    import botocore.session

    for service, (_responses, _cls, module, _detailed) in coverage.SERVICES.items():
        if not module:
            continue
        declared = set(importlib.import_module(f"ship.localcloud.emulator.{module}").ACTED_ON)
        operations = set(botocore.session.get_session().get_service_model(service).operation_names)
        assert declared <= operations, f"{service}: not operations of the service: {sorted(declared - operations)}"
