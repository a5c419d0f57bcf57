"""Process images: built from a commit's tree, reproducible, shaped like an OCI image."""

import io
import json
import shutil
import subprocess
import tarfile

import pytest

from helpers import ROOT
from ship import artifact, git, oci
from ship.errors import ShipError


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    dest = tmp_path_factory.mktemp("src")
    git.export(ROOT, dest)
    # The working tree's own files, so the test sees what is being changed.
    for name in ("Dockerfile", "gunicorn.conf.py", "pyproject.toml", "uv.lock", "distributions/hello/pyproject.toml",
                 "distributions/ship/pyproject.toml"):
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        (dest / name).write_bytes((ROOT / name).read_bytes())
    return dest


def test_runtime_spec_comes_from_the_dockerfile():
    spec = artifact.runtime_spec(ROOT / "Dockerfile")
    assert spec.cmd == ["gunicorn", "--config", "gunicorn.conf.py", "hello.wsgi:app"]
    assert spec.workdir == "/app" and 5000 in spec.ports


def test_shell_form_cmd_is_refused(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM x\nCMD gunicorn app\n")
    with pytest.raises(ShipError, match="exec form"):
        artifact.runtime_spec(tmp_path / "Dockerfile")


def test_same_commit_same_digest(exported, tmp_path, monkeypatch):
    monkeypatch.setenv("SHIP_STATE_DIR", str(tmp_path))
    commit = git.Commit(sha="a" * 40, short="a" * 12, dirty=False, timestamp=1700000000)
    first = artifact.build_process_image(exported, commit)
    second = artifact.build_process_image(exported, commit)
    assert first.digest == second.digest
    assert first.blobs == second.blobs

    config_desc, layers = oci.parse_manifest(first.manifest)
    assert config_desc.media_type == oci.PROCESS_CONFIG_MEDIA_TYPE
    config = json.loads(first.blobs[config_desc.digest])["config"]
    assert "APP_VERSION=" + "a" * 12 in config["Env"]
    assert config["Cmd"][0] == "gunicorn"
    # Two layers, as a Dockerfile that installs its locked requirements before copying the app:
    # the dependencies' wheels, then the app's wheel and working directory.
    deps, app = ([n for n in tarfile.open(fileobj=io.BytesIO(first.blobs[d.digest])).getnames()] for d in layers)
    assert all(n.startswith("wheels/") for n in deps)
    dep_names = {n.split("/")[1].split("-")[0].lower() for n in deps}
    assert {"flask", "gunicorn", "werkzeug"} <= dep_names and "hello" not in dep_names
    # The app alone: nothing of the deployment tool or its dependencies.
    assert not dep_names & {"ship", "boto3", "botocore", "moto", "invoke", "python_terraform", "pyyaml", "uv", "pip"}
    app_wheels = [n for n in app if n.startswith("wheels/")]
    assert sorted(app) == sorted(["app/gunicorn.conf.py", *app_wheels])
    assert len(app_wheels) == 1 and app_wheels[0].startswith("wheels/hello-")

    # Another version of the same tree is another image (its config names the version), with the same layers.
    other = artifact.build_process_image(exported, git.Commit("b" * 40, "b" * 12, False, 1700000000))
    assert other.digest != first.digest and oci.parse_manifest(other.manifest)[1] == layers


def test_an_edit_to_the_app_changes_only_the_app_layer(exported, tmp_path, monkeypatch):
    monkeypatch.setenv("SHIP_STATE_DIR", str(tmp_path / "state"))
    commit = git.Commit(sha="a" * 40, short="a" * 12, dirty=True, timestamp=1700000000)
    edited = tmp_path / "tree"
    shutil.copytree(exported, edited)
    views = edited / "src" / "hello" / "views.py"
    views.write_text(views.read_text() + "\n# an edit\n")
    before = oci.parse_manifest(artifact.build_process_image(exported, commit).manifest)[1]
    after = oci.parse_manifest(artifact.build_process_image(edited, commit).manifest)[1]
    assert after[0] == before[0] and after[1] != before[1]


def test_dirty_tree_is_refused_for_release(tmp_path):
    for args in (["init", "-q"], ["-c", "user.email=t@example.invalid", "-c", "user.name=t", "commit", "-q",
                                  "--allow-empty", "-m", "x"]):
        subprocess.run(["git", *args], cwd=tmp_path, check=True)
    (tmp_path / "new.txt").write_text("x")
    with pytest.raises(ShipError, match=r"refusing to release a dirty tree \(new.txt\)"):
        git.require_clean(tmp_path)
    assert git.head(tmp_path).tag.endswith("-dirty")
