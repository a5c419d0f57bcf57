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
    assert "DescribeTargetHealth" in covs["elbv2"].acted_on
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
