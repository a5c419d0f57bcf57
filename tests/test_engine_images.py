"""Removing the engine's images that a private repository's deploys built, and no others."""

import subprocess

from ship import container_cli, git
from ship.images import build_cache, remove_build_cache, remove_engine_images

COMMIT = "0123456789abcdef0123456789abcdef01234567"
OTHER = "fedcba9876543210fedcba9876543210fedcba98"


class _Engine:
    def __init__(self, images):
        self.left = list(images)

    def images(self):
        return [{"id": str(i), "repository": r, "tag": t} for i, (r, t) in enumerate(self.left)]

    def rm_image(self, ref, force=False):
        self.left.remove(tuple(ref.rsplit(":", 1)))


def test_only_the_app_s_images_of_the_given_commits_go(monkeypatch):
    engine = _Engine([
        ("localhost/hello", COMMIT[:12]),                                                  # built
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/hello", COMMIT[:12]),              # tagged for a registry
        ("localhost/hello", f"{COMMIT[:12]}-dirty-0a1b2c3d"),                              # an edit
        ("localhost/hello", OTHER[:12]),                                                   # another run's commit
        ("localhost/hello-tools", COMMIT[:12]),                                           # another repository
        ("localhost/hello", "latest"),
        ("localhost/hello", COMMIT[:6]),                                                   # too short to be ours
    ])
    monkeypatch.setattr(container_cli, "detect", lambda: engine)
    assert remove_engine_images("hello", [COMMIT]) == 3
    assert engine.left == [("localhost/hello", OTHER[:12]), ("localhost/hello-tools", COMMIT[:12]),
                           ("localhost/hello", "latest"), ("localhost/hello", COMMIT[:6])]


def test_without_an_engine_nothing_is_removed(monkeypatch):
    monkeypatch.setattr(container_cli, "detect", lambda: None)
    assert remove_engine_images("hello", [COMMIT]) == 0


class _Cache:
    """An engine whose build cache is ``cache``; an image in ``used`` stays when removed."""
    def __init__(self, cache, used=()):
        self.cache, self.used, self.asked = set(cache), set(used), []

    def build_cache(self):
        return set(self.cache)

    def remove_unused_images(self, ids):
        self.asked.append(sorted(ids))
        gone = set(ids) - self.used
        self.cache -= gone
        return len(gone)


def test_only_the_build_cache_made_since_goes(monkeypatch):
    engine = _Cache({"sha256:old", "sha256:new1", "sha256:new2", "sha256:used"}, used={"sha256:used"})
    monkeypatch.setattr(container_cli, "detect", lambda: engine)
    assert remove_build_cache({"sha256:old", "sha256:gone-meanwhile"}) == 2
    assert engine.asked == [["sha256:new1", "sha256:new2", "sha256:used"]]
    assert build_cache() == {"sha256:old", "sha256:used"}


def test_without_an_engine_there_is_no_build_cache(monkeypatch):
    monkeypatch.setattr(container_cli, "detect", lambda: None)
    assert build_cache() == set() and remove_build_cache(set()) == 0


def test_the_commits_of_a_repository_include_amended_ones(tmp_path):
    """An image built before an amend is still the repository's to remove: its commit is in the reflog."""
    def run(*args):
        return subprocess.run(["git", "-c", "user.email=t@example.invalid", "-c", "user.name=t", *args], cwd=tmp_path,
                              check=True, capture_output=True, text=True).stdout.strip()

    run("init", "-q")
    (tmp_path / "f").write_text("1")
    run("add", "f")
    run("commit", "-qm", "one")
    first = run("rev-parse", "HEAD")
    run("commit", "-q", "--amend", "-m", "one, amended")
    assert set(git.all_commits(tmp_path)) == {first, run("rev-parse", "HEAD")}
