"""A local cloud that remembers: the emulator's state saved under the state directory
and restored when the local cloud starts again.

What is saved: everything ``emulator.state.capture`` holds (moto's backends:
S3 with the Terraform state, ECR, ECS, ELBv2, IAM, EC2, CloudWatch Logs,
Application Auto Scaling, ...; and the stores the emulator keeps beside moto).
Image layers already live on disk in the blob store beside it.

How: one file, ``<state>/emulator-state.bin``: a magic line, a JSON header
(format, what wrote it, when, size and sha256 of the payload) and the pickle.
It is written beside (``.emulator-state.bin.tmp-<pid>``), flushed, fsynced and
renamed over the old one, then the directory is fsynced: a ``kill -9`` at any
moment leaves the previous snapshot or the new one, never a mix. The saver
snapshots a second after an API call that may change state, and every few
seconds while tasks run (their logs, events and counts change without a call).

Whether a snapshot can be loaded is decided by what it was written with
(``emulator.state.fingerprint``): moto's version, and the version of each of the
emulator's stores, which a developer bumps when a store's shape changes. Other
upgrades between commits keep the snapshot. A snapshot that cannot be loaded
(another moto, a store of another shape, a bad checksum, a pickle that fails)
is set aside with a one-line message, never silently dropped: renamed to
``emulator-state.unloadable-<time>.bin`` (the newest few are kept) and the local
cloud starts empty.

On restore, tasks that were running have no process any more. The data plane
settles them on its first step (``fargate.dataplane``: a task this run never
started ends STOPPED with the reason, its targets deregistered) and starts
fresh tasks for every service from its task definition; the restore only
counts them for its message.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from ship.fsutil import write_atomically

log = logging.getLogger("ship.localcloud.persistence")

SNAPSHOT = "emulator-state.bin"
MAGIC = b"ship-localcloud-state\n"
FORMAT = 1
KEEP_SET_ASIDE = 3
ENV_SWITCH = "SHIP_LOCAL_PERSISTENCE"      # "off" disables saving and restoring
SAVE_DELAY = 1.0        # seconds between a change and its snapshot
HEARTBEAT = 5.0         # seconds between snapshots while tasks run
# A snapshot that held the lock for t seconds waits PACE * t before the next one: saving
# never takes more than 1/PACE of the emulator's time, however busy it is.
PACE = 20.0

# Operations that only read, by name prefix (JSON protocols name them in X-Amz-Target).
_READ_PREFIXES = ("Describe", "List", "Get", "BatchGet", "Head", "Filter", "Lookup", "Search", "Query", "Scan",
                  "Validate")


class Unloadable(Exception):
    """A snapshot that cannot be loaded; str() says why, in a few words."""


def enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "on").strip().lower() not in ("off", "0", "false", "no")


def snapshot_path(state_dir: Path) -> Path:
    return Path(state_dir) / SNAPSHOT


# --------------------------------------------------------------------------- the file


def encode(meta: dict, payload: bytes) -> bytes:
    header = dict(meta, format=FORMAT, size=len(payload), sha256=hashlib.sha256(payload).hexdigest())
    return MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + payload


def decode(data: bytes) -> tuple[dict, bytes]:
    """(header, payload) of a snapshot's bytes; ``Unloadable`` if they are not one, whole."""
    if not data.startswith(MAGIC):
        raise Unloadable("not a local cloud snapshot")
    end = data.find(b"\n", len(MAGIC))
    if end < 0:
        raise Unloadable("truncated header")
    try:
        meta = json.loads(data[len(MAGIC):end])
    except ValueError:
        raise Unloadable("unreadable header") from None
    payload = data[end + 1:]
    if meta.get("format") != FORMAT:
        raise Unloadable(f"snapshot format {meta.get('format')}, this local cloud reads {FORMAT}")
    if len(payload) != meta.get("size") or hashlib.sha256(payload).hexdigest() != meta.get("sha256"):
        raise Unloadable(f"corrupt: {len(payload)} bytes where {meta.get('size')} were written, or a bad checksum")
    return meta, payload


def incompatibility(meta: dict, current: dict) -> str:
    """Why a snapshot written with ``meta['written_by']`` cannot be loaded here ("" if it can):
    another moto, or a store whose version differs. A store the snapshot lacks starts empty;
    a store it has that no module declares any more is left out."""
    written = meta.get("written_by") or {}
    if written.get("moto") != current.get("moto"):
        return f"written by moto {written.get('moto')}, this is {current.get('moto')}"
    saved, now = written.get("stores"), current.get("stores") or {}
    if not isinstance(saved, dict):
        return "written by a local cloud that did not version its stores"
    changed = sorted(name for name in saved.keys() & now.keys() if saved[name] != now[name])
    if changed:
        return "the shape of " + ", ".join(f"the {n} store changed (version {saved[n]}, this is {now[n]})"
                                           for n in changed)
    return ""


def set_aside(path: Path, now: float | None = None) -> Path:
    """Rename an unloadable snapshot out of the way (keeping the newest few); returns its new path."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(now or time.time()))
    aside = path.with_name(f"{path.stem}.unloadable-{stamp}{path.suffix}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.stem}.unloadable-{stamp}-{n}{path.suffix}")
    os.replace(path, aside)
    old = sorted(path.parent.glob(f"{path.stem}.unloadable-*{path.suffix}"), key=lambda p: p.stat().st_mtime)
    for stale in old[:-KEEP_SET_ASIDE]:
        stale.unlink(missing_ok=True)
    return aside


def _remove_temporaries(state_dir: Path) -> None:
    for tmp in Path(state_dir).glob(f".{SNAPSHOT}.tmp-*"):
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------- restore


@dataclass
class Restored:
    """What the start found: ``loaded`` state (or not), its lineage, and a line for people."""

    loaded: bool
    lineage: str
    message: str = ""
    set_aside: Path | None = None
    saved_at: float | None = None

    def info(self) -> dict:
        return {"lineage": self.lineage, "restored": self.loaded, "state_message": self.message,
                "state_set_aside": str(self.set_aside) if self.set_aside else None}


def restore(state_dir: Path, lock) -> Restored:
    """Load the snapshot under ``state_dir`` into the emulator (call before serving)."""
    from ship.localcloud.emulator import state as emulator_state

    state_dir = Path(state_dir)
    _remove_temporaries(state_dir)
    path = snapshot_path(state_dir)
    if not enabled() or not path.is_file():
        return Restored(False, str(uuid.uuid4()))
    started = time.monotonic()
    try:
        meta, payload = decode(path.read_bytes())
        why = incompatibility(meta, emulator_state.fingerprint())
        if why:
            raise Unloadable(why)
        with lock:
            loaded = emulator_state.loads(payload)
    except Exception as exc:  # whatever is wrong with it, it is set aside, never half-loaded
        reason = " ".join((str(exc) if isinstance(exc, Unloadable) else f"{type(exc).__name__}: {exc}").split())[:300]
        aside = set_aside(path)
        message = (f"the local cloud's saved state could not be loaded ({reason}); set aside as {aside}, "
                   f"starting empty")
        log.warning("%s", message)
        return Restored(False, str(uuid.uuid4()), message, aside)
    with lock:
        emulator_state.install(loaded)
        lost = _unsettled_tasks()
    age = time.time() - float(meta.get("saved_at") or time.time())
    services = ", ".join(f"{k} {v}" for k, v in sorted(emulator_state.counts(loaded).items()))
    message = (f"restored the state saved {age:.0f}s ago ({services})"
               + (f"; {lost} task(s) that were running are stopped and will be replaced" if lost else ""))
    log.info("%s (loaded in %.1fs)", message, time.monotonic() - started)
    return Restored(True, meta.get("lineage") or str(uuid.uuid4()), message, None, meta.get("saved_at"))


def _unsettled_tasks() -> int:
    """Tasks restored as not STOPPED (the data plane stops them on its first step)."""
    from ship.localcloud.emulator import ecs

    return sum(1 for task in ecs.all_local_tasks() if task.last_status != "STOPPED")


# --------------------------------------------------------------------------- saving


def is_read_request(method: str, target: str) -> bool:
    """Whether an API request can only read: S3 GET/HEAD, or a JSON-protocol operation
    (``X-Amz-Target: Service.Operation``) named like a read. Everything else may write."""
    if method in ("GET", "HEAD", "OPTIONS"):
        return True
    operation = target.rsplit(".", 1)[-1] if target else ""
    return bool(operation) and operation.startswith(_READ_PREFIXES)


class Saver:
    """Snapshots the emulator a moment after it may have changed, off the request path."""

    def __init__(self, state_dir: Path, lock, lineage: str, delay: float = SAVE_DELAY,
                 heartbeat: float = HEARTBEAT, busy: Callable[[], bool] | None = None):
        self.path = snapshot_path(state_dir)
        self.lock = lock
        self.lineage = lineage
        self.delay, self.heartbeat = delay, heartbeat
        self.busy = busy or _tasks_running
        self.saves = 0
        self.last_error = ""
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._last_digest = ""
        self._not_before = 0.0
        self.held = 0.0                      # seconds the last snapshot held the emulator's lock
        self._mu = threading.Lock()          # one save at a time
        self._thread = threading.Thread(target=self._loop, name="state-saver", daemon=True)

    def start(self) -> None:
        if enabled():
            self._thread.start()

    def track(self, app):
        """Wrap a WSGI app: requests that may change state mark the snapshot dirty."""
        def tracked(environ, start_response):
            if not is_read_request(environ.get("REQUEST_METHOD", ""), environ.get("HTTP_X_AMZ_TARGET", "")):
                self._dirty.set()
            return app(environ, start_response)
        return tracked

    def stop(self, final: bool = True) -> None:
        """Stop the thread; with ``final``, one last snapshot (after the data plane stopped)."""
        self._stop.set()
        self._dirty.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        if final and enabled():
            self.save()

    def _loop(self) -> None:
        while not self._stop.is_set():
            changed = self._dirty.wait(self.heartbeat)
            if self._stop.is_set():
                break
            if changed:
                # let a burst of calls settle into one snapshot, and keep to the pace
                self._stop.wait(max(self.delay, self._not_before - time.monotonic()))
            elif not self._busy():
                continue
            self._dirty.clear()
            self.save()

    def _busy(self) -> bool:
        try:
            with self.lock:
                return self.busy()
        except Exception:
            return True

    def save(self) -> bool:
        """One snapshot now; False (and logged) when it failed. Never raises."""
        from ship.localcloud.emulator import state as emulator_state

        with self._mu:
            try:
                started = time.monotonic()
                with self.lock:
                    payload = emulator_state.dumps(emulator_state.capture())
                self.held = held = time.monotonic() - started
                self._not_before = time.monotonic() + PACE * held
                digest = hashlib.sha256(payload).hexdigest()
                if digest == self._last_digest:
                    return True
                meta = {"written_by": emulator_state.fingerprint(), "saved_at": time.time(),
                        "lineage": self.lineage}
                write_atomically(self.path, encode(meta, payload), durable=True)
                self._last_digest = digest
                self.saves += 1
                self.last_error = ""
                log.log(logging.INFO if held > 0.25 else logging.DEBUG,
                        "state saved: %d bytes, the lock held %.0f ms", len(payload), held * 1000)
                return True
            except Exception as exc:
                # an OSError names the snapshot, not the temporary beside it (a new name each time)
                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                message = (f"saving the local cloud's state failed: {type(exc).__name__}: {why}"
                           + (f" ({self.path})" if isinstance(exc, OSError) else ""))
                if message != self.last_error:
                    log.error("%s", message)
                self.last_error = message
                return False


def _tasks_running() -> bool:
    from ship.localcloud.emulator import ecs

    return any(t.last_status != "STOPPED" for t in ecs.all_local_tasks())


# --------------------------------------------------------------------------- reset


def wipe(state_dir: Path) -> list[str]:
    """Forget the local cloud's state on purpose (it must not be running): the snapshot,
    the image layers and the task logs. Caches (installed process images, listener ports)
    and snapshots set aside stay. Returns what was removed."""
    state_dir = Path(state_dir)
    removed = []
    for item in _wipe_targets(state_dir):
        if item.is_dir():
            shutil.rmtree(item, ignore_errors=True)
        elif item.exists():
            item.unlink(missing_ok=True)
        else:
            continue
        removed.append(item.name)
    return removed


def _wipe_targets(state_dir: Path) -> Iterable[Path]:
    yield snapshot_path(state_dir)
    yield from state_dir.glob(f".{SNAPSHOT}.tmp-*")
    yield state_dir / "blobs"
    yield state_dir / "tasks"
