"""One deployed stack shared by the end-to-end tests (a cold apply costs ~75 s).

The stack runs from a private copy of the working tree (its own git repo, so
tests can commit new versions) against a private local cloud on a free port
with its own state directory; the developer's own local cloud is untouched.

With ``SHIP_E2E_SEED`` (a seed, tests/e2e/seed.py), the copy of the tree and the
local cloud's state are the seed's: the first ``inv deploy --env=local`` restores
the stack the seed deployed instead of creating it.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from helpers import ROOT, processes_mentioning
from ship.net import free_port

INV = str(Path(sys.executable).parent / "inv")
SEED_READY = "seed.json"   # written last by tests/e2e/seed.py: a seed without it is unfinished


class Stack:
    def __init__(self, repo: Path, state: Path, port: int, log: Path):
        self.repo, self.state, self.port, self.log = repo, state, port, log
        self.seed: Path | None = None   # the seed it started from (SHIP_E2E_SEED), if any
        self.repos = [repo]  # and clones that tests deploy from: their images go when the stack ends
        self.url: str | None = None
        self.env = dict(os.environ, SHIP_STATE_DIR=str(state), SHIP_LOCAL_PORT=str(port),
                        SHIP_PROJECT_DIR=str(repo), PYTHONPATH=str(repo / "src"),
                        AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1",
                        # the local cloud `inv` starts stops, with its replicas, when this session ends
                        SHIP_LOCAL_EXIT_WITH=str(os.getpid()))
        self.env.pop("AWS_PROFILE", None)
        self.runtime = self.env.setdefault("SHIP_LOCAL_RUNTIME", "process")
        # Service Auto Scaling's datapoints every 2 s instead of CloudWatch's minute: AWS's 3 (scale-out)
        # and 15 (scale-in) datapoints take seconds (tests/e2e/test_service_autoscaling.py)
        self.env.setdefault("SHIP_LOCAL_METRIC_PERIOD", "2")
        self.env.pop("AWS_ENDPOINT_URL", None)
        if os.environ.get("SHIP_E2E_PROVIDER") == "unchecked":
            config = unchecked_provider_config(state.parent / "terraform.tfrc", state / "terraform" / "plugin-cache")
            if config is not None:
                self.env["TF_CLI_CONFIG_FILE"] = str(config)

    def inv(self, *args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
        started = time.monotonic()
        result = subprocess.run([INV, *args], cwd=self.repo, env=self.env, capture_output=True, text=True,
                                timeout=timeout)
        with open(self.log, "a") as fh:
            fh.write(f"\n$ inv {' '.join(args)}  ({time.monotonic() - started:.1f}s, exit {result.returncode})\n")
            fh.write(result.stdout + result.stderr)
        if check and result.returncode != 0:
            raise AssertionError(f"inv {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.repo, check=True, capture_output=True, text=True).stdout

    def commit(self, message: str, edit: tuple[str, str, str] | None = None) -> str:
        if edit:
            path, old, new = edit
            target = self.repo / path
            text = target.read_text()
            assert old in text, f"{old!r} not in {path}"
            target.write_text(text.replace(old, new))
            self.git("add", path)
            self.git("commit", "-qm", message)
        else:
            self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "--short=12", "HEAD").strip()

    def session(self, env_name: str = "local"):
        import boto3

        return boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")

    def client(self, service: str):
        return self.session().client(service, endpoint_url=f"http://127.0.0.1:{self.port}")

    def get(self, path: str = "/", timeout: float = 5) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as err:
            return err.code, {}


LOCKED_PROVIDER = re.compile(r'provider "registry\.terraform\.io/hashicorp/aws" \{\s*version\s*=\s*"([^"]+)"')


def unchecked_provider_config(config: Path, cache: Path) -> Path | None:
    """A Terraform CLI configuration (written to ``config``) that runs the AWS provider of the
    committed lock file's version straight from the provider mirror, as a development override:
    the same binary, started the same way, but not hashed against the lock file by every command.
    Terraform hashes the 707 MB package several times a command (`inv infra.plan` with nothing
    to change: 6.8 s of CPU checked, 5.0 s unchecked). With ``SHIP_E2E_PROVIDER=unchecked``
    (noxfile.py: every e2e run but the flow shard, which deploys from nothing the way a user
    does; the terraform session inits from the lock files). None without a mirror, or when it
    lacks the locked version: Terraform then runs as configured."""
    from ship import terraform

    mirror = terraform.provider_mirror()
    locked = LOCKED_PROVIDER.search((ROOT / "terraform" / ".terraform.lock.hcl").read_text())
    if mirror is None or locked is None:
        return None
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), platform.machine())
    package = mirror / "registry.terraform.io" / "hashicorp" / "aws" / locked.group(1) / f"{sys.platform}_{arch}"
    if not package.is_dir():
        return None
    cache.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f'plugin_cache_dir = "{cache}"\n'
        "provider_installation {\n"
        f'  dev_overrides {{\n    "registry.terraform.io/hashicorp/aws" = "{package}"\n  }}\n'
        f'  filesystem_mirror {{\n    path    = "{mirror}"\n    include = ["registry.terraform.io/*/*"]\n  }}\n'
        '  direct {\n    exclude = ["registry.terraform.io/*/*"]\n  }\n'
        "}\n")
    return config


def _copy_tree(dest: Path) -> None:
    """The working tree as it is (tracked and new files), committed in a fresh repo."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    # a message of its own: runs that start in the same second must not share a commit (and an image tag)
    first = f"v1 ({uuid.uuid4().hex[:12]})"
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.email=e2e@example.invalid", "-c", "user.name=e2e", "commit", "-qm", first]):
        subprocess.run(["git", *args], cwd=dest, check=True, capture_output=True)
    # What `pip install -e .` leaves in a developer's tree: src/hello_ship.egg-info. It must
    # never pass for the app inside an image (it once did, through PYTHONPATH).
    subprocess.run([sys.executable, "-c", "from setuptools import setup; setup()", "-q", "egg_info",
                    "--egg-base", "src"], cwd=dest, check=True, capture_output=True)
    assert (dest / "src" / "hello_ship.egg-info").is_dir()
    subprocess.run(["git", "config", "user.email", "e2e@example.invalid"], cwd=dest, check=True)
    subprocess.run(["git", "config", "user.name", "e2e"], cwd=dest, check=True)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``teardown`` (destroy the shared stack) run after every other test."""
    items.sort(key=lambda item: item.get_closest_marker("teardown") is not None)


def pytest_configure(config):
    config.addinivalue_line("markers", "teardown: runs after every other test (destroys the shared stack)")


def _from_seed(seed: Path, repo: Path, state: Path) -> None:
    """The seed's tree (its git repo) and its stopped local cloud's state, as this stack's own.
    Not copied: its logs, its listeners' ports (each stack's listeners take free ones) and the
    unpacked images (made again from the image blobs, with this state's paths)."""
    if not (seed / SEED_READY).is_file():
        raise pytest.UsageError(f"SHIP_E2E_SEED={seed} is not a finished seed (no {SEED_READY}): "
                                "make one with `python tests/e2e/seed.py DEST`")
    shutil.copytree(seed / "repo", repo, symlinks=True)
    from ship.localcloud import apilog, control

    skip = {"rootfs", "listeners.json", control.INFOFILE, control.LOGFILE, apilog.FILENAME}
    shutil.copytree(seed / "state", state, symlinks=True,
                    ignore=lambda folder, names: [n for n in names if n in skip and folder.endswith("localcloud")])


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    base = tmp_path_factory.mktemp("e2e")
    repo, state = base / "repo", base / "state"
    seed = os.environ.get("SHIP_E2E_SEED")
    if seed:
        _from_seed(Path(seed), repo, state)
    else:
        repo.mkdir()
        _copy_tree(repo)
    log = Path(os.environ.get("SHIP_E2E_LOG", base / "inv.log"))
    s = Stack(repo, state, free_port(), log)
    s.seed = Path(seed).resolve() if seed else None
    try:
        yield s
    finally:
        # Whatever happened, leave nothing running, and no image behind.
        s.inv("local.down", check=False, timeout=120)
        leftovers = processes_mentioning(str(state))
        for line in leftovers:
            pid = int(line.split()[0])
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        if s.runtime == "container":
            remove_images_built(s.repos, keep=[s.seed / "repo"] if s.seed else [])
        print(f"e2e log: {log}")


def remove_images_built(repos: list[Path], keep: list[Path] = ()) -> None:
    """The container images this stack's deploys built, from the commits of its repository and
    its clones. Left, each run adds one image per commit to the engine's storage. Other runs'
    commits are not touched, nor those of the repositories in ``keep`` (a seed's: the other runs
    that started from it use its images, which go when the seed does)."""
    from ship import git
    from ship.images import remove_engine_images

    kept = {sha for repo in keep for sha in git.all_commits(repo)}
    remove_engine_images("hello", [sha for repo in repos for sha in git.all_commits(repo) if sha not in kept])


@pytest.fixture(scope="session")
def deployed(stack):
    """The shared stack after one cold `inv deploy --env=local` (from a seed: the deploy that
    restores the seed's stack); its URL in ``stack.url``."""
    if stack.url is None:
        started = time.monotonic()
        result = stack.inv("deploy", "--env=local")
        if stack.seed is None:
            stack.cold_deploy_seconds = time.monotonic() - started
        stack.cold_deploy_output = result.stdout
        last = result.stdout.strip().splitlines()[-1]
        assert last.startswith("http://127.0.0.1:"), last
        stack.url = last
    return stack
