"""The runners a local cloud starts tasks with: the process runner at once, the container
runner once a container engine has been looked for.

Looking for an engine (``docker ps``/``podman ps``, then removing the containers an
earlier local cloud left behind: two ``podman ps``) takes 0.1-0.2 s, and took about a
second when the engine was looked for with ``podman info``. When no container of the state
directory can be left (``may_have_containers``), it runs on a thread of its own while the
local cloud starts, instead of before it answers. A task or an image preparation that
needs a runner none of those found so far waits for the look to end (``find``); nothing
else waits for it. When containers may be left, the look comes first, as their removal
must: the local cloud answers once nothing of its predecessor runs.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable, Iterator

from ship.localcloud.runtime.base import ResolvedImage, Runner

log = logging.getLogger("ship.localcloud.runtime")

__all__ = ["Runners", "LOOKUP_WAIT", "CONTAINERS_MARK", "containers_mark", "may_have_containers"]

# A file in the state directory while containers of it may exist: the container runner writes
# it before it creates one, and the engine lookup removes it once it has removed the leftovers.
CONTAINERS_MARK = "containers.mark"


def containers_mark(state_dir: str | Path) -> Path:
    """The mark file of ``state_dir``."""
    return Path(state_dir) / CONTAINERS_MARK


def may_have_containers(state_dir: str | Path) -> bool:
    """Whether containers of ``state_dir`` may still exist (left by a local cloud that died)."""
    return containers_mark(state_dir).exists()


# How long ``find`` waits for the engine lookup: the probe (``<engine> ps``,
# container_cli.PROBE_ARGS) has container_cli.PROBE_TIMEOUTS (15 s, then 30 s) to answer,
# removing leftover containers a few seconds more.
LOOKUP_WAIT = 90.0


class Runners:
    """The runners, in the order they are asked (``can_run``); ``lookup`` (on a thread of its
    own) returns one more runner, or None; ``on_known`` is called once the lookup has ended."""

    def __init__(self, runners: list[Runner], lookup: Callable[[], Runner | None] | None = None,
                 on_known: Callable[[Runners], None] | None = None):
        self._runners = list(runners)
        self._known = threading.Event()
        self._on_known = on_known
        if lookup is None:
            self._settle()
        else:
            threading.Thread(target=self._look, args=(lookup,), name="runner-lookup", daemon=True).start()

    def _look(self, lookup: Callable[[], Runner | None]) -> None:
        try:
            found = lookup()
        except Exception:   # a broken engine must not take the process runner down with it
            log.exception("looking for a container engine failed: container images will not run here")
            found = None
        if found is not None:
            self._runners = [*self._runners, found]      # a new list: readers iterate a whole one
        self._settle()

    def _settle(self) -> None:
        self._known.set()
        if self._on_known is not None:
            try:
                self._on_known(self)
            except Exception:
                log.exception("reporting the runners failed")

    def __iter__(self) -> Iterator[Runner]:
        return iter(self._runners)

    @property
    def known(self) -> bool:
        """Whether the lookup has ended (every runner this local cloud will have is here)."""
        return self._known.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._known.wait(timeout)

    def find(self, image: ResolvedImage, timeout: float = LOOKUP_WAIT) -> Runner | None:
        """The first runner that can run ``image``; while the lookup runs, it is waited for."""
        found = self._first(image)
        if found is None and self._known.wait(timeout):
            found = self._first(image)
        return found

    def _first(self, image: ResolvedImage) -> Runner | None:
        return next((r for r in self._runners if r.can_run(image)), None)
