import json
import os
import stat
import subprocess

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


@pytest.mark.parametrize("name, flag", [("local", ["-parallelism=32"]), ("local-prod", ["-parallelism=32"]),
                                        ("production", [])])
def test_the_local_cloud_is_applied_without_terraform_s_rate_limit(monkeypatch, tmp_path, name, flag):
    """Terraform's default of 10 operations at once is for AWS's API rate limits: kept there."""
    monkeypatch.setenv("SHIP_STATE_DIR", str(tmp_path))
    runner = terraform.Runner(config.load(name))
    seen = []
    monkeypatch.setattr(runner, "run", lambda argv, stream=False, doing="": (seen.append(argv), (0, ""))[1])
    runner.apply({"image": "x"})
    runner.destroy({"image": "x"})
    for argv in seen:
        assert [a for a in argv if a.startswith("-parallelism")] == flag, argv


@pytest.mark.parametrize("fails", [False, True])
def test_each_command_reads_its_variables_from_a_file_of_its_own_in_the_data_directory(monkeypatch, tmp_path, fails):
    """Not /tmp, where a killed command left its file: the data directory, and gone after the command
    whatever happened."""
    monkeypatch.setenv("SHIP_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    runner = terraform.Runner(config.load("local"))
    gone = subprocess.Popen(["true"])
    gone.wait()
    runner.data_dir.mkdir(parents=True)
    killed = runner.data_dir / f"vars-{gone.pid}-x.tfvars.json"       # what a killed command left
    running = runner.data_dir / f"vars-{os.getppid()}-y.tfvars.json"   # a command still running
    killed.write_text("{}")
    running.write_text("{}")
    read = []

    def run(argv, stream=False, doing=""):
        [name] = [a.split("=", 1)[1] for a in argv if a.startswith("-var-file=")]
        read.append((os.path.dirname(name), json.loads(open(name).read())))
        if fails:
            raise KeyboardInterrupt
        return 0, ""

    monkeypatch.setattr(runner, "run", run)
    for command in (runner.plan, runner.apply, runner.destroy):
        try:
            command({"image": "repo:1"})
        except KeyboardInterrupt:
            assert fails
    assert [where for where, _ in read] == [str(runner.data_dir)] * 3
    assert all(values["image"] == "repo:1" and values["environment"] == "local" for _, values in read), read
    assert list(runner.data_dir.glob("*.tfvars.json")) == [running] and not os.listdir(tmp_path / "tmp")


# -- init runs once per set of inputs ---------------------------------------------------------------

FAKE_TERRAFORM = """#!/bin/sh
echo "$1" >> "$CALLS"
[ "$1" = init ] || exit 0
[ -n "$FAIL_INIT" ] && { echo "Error: init failed on purpose"; exit 1; }
mkdir -p "$TF_DATA_DIR/providers/registry.terraform.io/hashicorp/aws/5.100.0/linux_amd64"
echo '{}' > "$TF_DATA_DIR/terraform.tfstate"
"""


@pytest.fixture
def fake_terraform(monkeypatch, tmp_path):
    """A project copy, a state dir and a terraform that only notes its commands and makes what init makes."""
    import shutil

    from helpers import ROOT

    project = tmp_path / "project"
    shutil.copytree(ROOT / "terraform", project / "terraform", ignore=shutil.ignore_patterns(".terraform"))
    binary = tmp_path / "bin" / "terraform"
    binary.parent.mkdir()
    binary.write_text(FAKE_TERRAFORM)
    binary.chmod(0o755)
    calls = tmp_path / "calls"
    for key, value in {"SHIP_PROJECT_DIR": project, "SHIP_STATE_DIR": tmp_path / "state", "TF_BINARY": binary,
                       "CALLS": calls}.items():
        monkeypatch.setenv(key, str(value))
    monkeypatch.delenv("SHIP_ENVIRONMENTS_FILE", raising=False)
    monkeypatch.delenv("FAIL_INIT", raising=False)

    def inits() -> int:
        return calls.read_text().split().count("init") if calls.is_file() else 0
    return project / "terraform", tmp_path / "state" / "terraform" / "local", inits


def test_init_runs_again_only_when_what_it_reads_or_made_changed(fake_terraform, monkeypatch):
    tf_dir, data_dir, inits = fake_terraform
    runner = lambda: terraform.Runner(config.load("local"))  # noqa: E731 - a fresh runner per command, as ship makes
    runner().init()
    assert inits() == 1 and (data_dir / terraform.INIT_RECORD).is_file()
    runner().init()
    assert inits() == 1                                       # the same inputs: skipped
    log = (data_dir.parents[1] / "logs" / "terraform-local.log").read_text()
    assert log.count(" init -backend-config") == 2 and log.count("# skipped:") == 1

    (tf_dir / "environments.yaml").write_text((tf_dir / "environments.yaml").read_text() + "\n# a comment\n")
    runner().init()
    assert inits() == 1                                       # the settings file is no input of init

    module = next((tf_dir / "modules").glob("*/main.tf"))
    module.write_text(module.read_text() + "\n# a comment\n")
    runner().init()
    assert inits() == 2                                       # any file of the configuration
    runner().init()
    assert inits() == 2

    monkeypatch.setenv("TF_LOG", "WARN")
    runner().init()
    assert inits() == 3                                       # the process environment
    runner().init()
    assert inits() == 3

    provider = next((data_dir / "providers").glob("*/*/*/*/*"))
    provider.rmdir()
    runner().init()
    assert inits() == 4 and provider.is_dir()                 # something init made is gone

    (data_dir / terraform.INIT_RECORD).write_text("{not json")
    runner().init()
    assert inits() == 5                                       # an unreadable record


def test_a_failed_init_leaves_no_record(fake_terraform, monkeypatch):
    tf_dir, data_dir, inits = fake_terraform
    terraform.Runner(config.load("local")).init()
    assert (data_dir / terraform.INIT_RECORD).is_file()
    monkeypatch.setenv("FAIL_INIT", "1")
    monkeypatch.setenv("TF_LOG", "WARN")                      # a new input: init runs, and fails
    with pytest.raises(ShipError, match="init"):
        terraform.Runner(config.load("local")).init()
    assert not (data_dir / terraform.INIT_RECORD).exists()
    monkeypatch.delenv("FAIL_INIT")
    monkeypatch.delenv("TF_LOG")                             # back to the inputs of the first init
    terraform.Runner(config.load("local")).init()
    assert inits() == 3                                       # not skipped: the failed one forgot the record
