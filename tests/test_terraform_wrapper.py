import os
import stat

import pytest

from ship import config, terraform
from ship.errors import ShipError


def test_missing_binary_says_how_to_install(monkeypatch):
    monkeypatch.setenv("TF_BINARY", "no-such-terraform-binary")
    with pytest.raises(ShipError, match="no-such-terraform-binary not found on PATH: install Terraform"):
        terraform.binary()


def test_opentofu_binary_is_honoured(monkeypatch, tmp_path):
    tofu = tmp_path / "tofu"
    tofu.write_text("#!/bin/sh\n")
    tofu.chmod(tofu.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("TF_BINARY", "tofu")
    assert terraform.binary() == str(tofu)


def test_mirror_config_is_written(monkeypatch, tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "registry.terraform.io").mkdir(parents=True)
    monkeypatch.setenv("SHIP_TF_PROVIDER_MIRROR", str(mirror))
    cfg = terraform.cli_config(tmp_path / "state")
    text = cfg.read_text()
    assert f'path    = "{mirror}"' in text and "filesystem_mirror" in text and "direct" in text


def test_bad_mirror_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("SHIP_TF_PROVIDER_MIRROR", str(tmp_path))
    with pytest.raises(ShipError, match="holds no registry.terraform.io"):
        terraform.provider_mirror()


def test_local_commands_target_the_emulator_backend(monkeypatch, tmp_path):
    monkeypatch.setenv("SHIP_STATE_DIR", str(tmp_path))
    runner = terraform.Runner(config.load("local"))
    backend = runner.backend_config()
    assert backend["use_lockfile"] == "true" and backend["use_path_style"] == "true"
    assert backend["key"] == "env/local/terraform.tfstate"
    env = runner.process_env()
    assert env["TF_DATA_DIR"] == str(tmp_path / "terraform" / "local")
    assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1")
    argv = runner.command("apply", target=["module.ecr"], auto_approve=terraform.IsFlagged, input=False)
    assert argv[1:] == ["apply", "-target=module.ecr", "-auto-approve", "-input=false"]


def test_aws_backend_has_no_emulator_flags(tmp_path, monkeypatch):
    monkeypatch.setenv("SHIP_STATE_DIR", str(tmp_path))
    backend = terraform.Runner(config.load("production")).backend_config()
    assert "use_path_style" not in backend and "skip_credentials_validation" not in backend
