"""Removing the engine's images that a private repository's deploys built, and no others."""

from ship import container_cli
from ship.images import remove_engine_images

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
