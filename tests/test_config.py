import textwrap

import pytest

from ship import config
from ship.errors import ShipError


def write(tmp_path, text):
    path = tmp_path / "environments.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_project_environments_load():
    names = config.environment_names()
    assert {"local", "local-prod", "staging", "production"} <= set(names)
    local = config.load("local")
    assert local.emulator and local.region == "us-east-1"
    assert local.prefix == "hello-local"
    assert local.state_key == "env/local/terraform.tfstate"
    assert local.endpoint_url.startswith("http://127.0.0.1:")
    prod = config.load("production")
    assert not prod.emulator and prod.endpoint_url is None


def test_unknown_environment_lists_the_valid_ones():
    with pytest.raises(ShipError, match=r"unknown environment 'nope': valid environments are local, local-prod, "):
        config.load("nope")


def test_malformed_yaml_names_the_line(tmp_path):
    path = write(tmp_path, """
        environments:
          local: {emulator: true
        """)
    with pytest.raises(ShipError, match=r"is not valid YAML at line \d+"):
        config.load("local", path)


def test_incomplete_environment_names_the_missing_key(tmp_path):
    path = write(tmp_path, """
        defaults: {app_name: hello}
        environments:
          local: {emulator: true}
        """)
    with pytest.raises(ShipError, match=r"environment 'local' lacks 'aws_region'"):
        config.load("local", path)


def test_wrong_type_is_reported(tmp_path):
    text = (config.paths.environments_file()).read_text().replace("desired_count: 2", "desired_count: two")
    path = tmp_path / "environments.yaml"
    path.write_text(text)
    with pytest.raises(ShipError, match=r"desired_count must be an integer, got 'two'"):
        config.load("local", path)


def test_aws_environment_needs_a_state_bucket(tmp_path):
    text = config.paths.environments_file().read_text().replace(
        "state_bucket: hello-tfstate-staging-CHANGE-ME", 'state_bucket: ""')
    path = tmp_path / "environments.yaml"
    path.write_text(text)
    with pytest.raises(ShipError, match="needs a state_bucket"):
        config.load("staging", path)


def test_missing_file(tmp_path):
    with pytest.raises(ShipError, match="is missing"):
        config.load("local", tmp_path / "nope.yaml")


def test_bad_local_port(monkeypatch):
    monkeypatch.setenv("SHIP_LOCAL_PORT", "http")
    with pytest.raises(ShipError, match="SHIP_LOCAL_PORT='http' is not a port number"):
        config.local_port()
