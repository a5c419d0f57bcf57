"""A Docker-compatible container engine: the ``docker`` CLI or the ``podman`` CLI.

``detect()`` picks the engine once per process: ``docker`` when ``docker ps``
answers (a daemon is reachable), else ``podman`` when ``podman ps`` answers (its
OCI runtime and storage are usable). ``ps``, not ``info``: ``podman info`` costs
0.25-0.3 s of CPU (it asks the package manager for the versions of conmon, the
runtime and slirp4netns: 9 ``dpkg-query`` runs on Debian) and took 1.5-5 s on a
busy machine; ``podman ps --quiet`` costs about 0.03 s, and both fail alike for a
missing OCI runtime or unusable storage.
``SHIP_CONTAINER_ENGINE=docker|podman`` forces one. Both CLIs take the same
arguments for everything used here (build, run, stop, rm, logs, inspect,
images, save), so one class drives either; every command line is made by
``Engine.argv`` and the ``*_args`` methods, never pasted together elsewhere.

Image ids are returned as ``sha256:<hex>`` whatever the engine prints: an
image's id is the digest of its config blob, which is what a registry
manifest's ``config.digest`` names.
"""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from ship.errors import ShipError

ENGINES = ("docker", "podman")
ENV_VAR = "SHIP_CONTAINER_ENGINE"
PROBE_TIMEOUT = 15.0
# An engine that has not answered the probe within one is asked again with the next (_detect):
# Podman answers ``ps`` once it holds its storage lock, which builds and removals beside it can
# hold for longer than 15 s on a busy machine. A local cloud started beside five e2e runs and
# the image tests took that for no engine, and ran none of its container tasks.
PROBE_TIMEOUTS = (PROBE_TIMEOUT, 30.0)
PROBE_ARGS = ("ps", "--quiet")   # the command that tells whether an engine answers
DEFAULT_TIMEOUT = 120.0
# The label the Dockerfile's first stage sets, and so every image a build of it commits: with
# Podman (and Docker's classic builder) each step and stage of a build is an image, untagged but
# kept as the build cache, and nothing removes them (335 of them, left by 18 hours of CI runs,
# held 10.8 GB). The label tells this project's build cache from other images (``build_cache``).
BUILD_LABEL = "ship.build"
# A listing that met an object removed meanwhile is asked again (Engine.listing), after 0.05 s,
# then twice as long each time: a build next to it removes its steps' images one after another
# (three listings in a row, asked at once, met one each with five e2e runs and the image tests).
LISTING_ATTEMPTS = 6
LOCAL_BASE_IMAGE = "localhost/ship-python-base:bookworm"
SETUP_SCRIPT = ".ci/podman-setup.sh"

OutputCallback = Callable[[str], None]


@dataclass(frozen=True)
class Probe:
    """What ``<engine> ps`` (``PROBE_ARGS``) said."""

    name: str
    ok: bool
    reason: str = ""
    timed_out: bool = False


def _last_line(text: str | bytes | None, default: str = "no output") -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else default


def _shorten(text: str, limit: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cache_lookup_race(lines: list[str]) -> bool:
    return any("checking if cached image exists" in line and "layer not known" in line for line in lines[-5:])


def normalize_id(image_id: str) -> str:
    """``sha256:<hex>`` for an id printed with or without its algorithm."""
    image_id = image_id.strip()
    if re.fullmatch(r"[0-9a-f]{64}", image_id):
        return "sha256:" + image_id
    return image_id


def probe(name: str, timeout: float = PROBE_TIMEOUT) -> Probe:
    """Run ``<name> ps --quiet`` quietly: does the engine answer?"""
    exe = shutil.which(name)
    if exe is None:
        return Probe(name, False, f"{name}: command not found")
    try:
        proc = subprocess.run([exe, *PROBE_ARGS], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Probe(name, False, f"no answer within {timeout:g}s", timed_out=True)
    except OSError as exc:
        return Probe(name, False, str(exc))
    if proc.returncode != 0:
        return Probe(name, False, _last_line(proc.stderr or proc.stdout))
    return Probe(name, True)


# --------------------------------------------------------------------------- the engine


class Engine:
    """One container engine CLI (``docker`` or ``podman``)."""

    def __init__(self, name: str, exe: str | None = None):
        if name not in ENGINES:
            raise ShipError(f"unknown container engine {name!r}: use one of {', '.join(ENGINES)}")
        self.name = name
        self.exe = exe or shutil.which(name) or name

    def __repr__(self) -> str:
        return f"Engine({self.name!r})"

    # ---- command lines (the only place they are made)

    def argv(self, *args: str | int | Path | Iterable | None) -> list[str]:
        """``[exe, *args]``: nested sequences are flattened, ``None`` is dropped."""
        out = [self.exe]

        def add(item):
            if item is None:
                return
            if isinstance(item, (list, tuple)):
                for sub in item:
                    add(sub)
            else:
                out.append(str(item))

        for arg in args:
            add(arg)
        return out

    @staticmethod
    def _pairs(flag: str, mapping: Mapping[str, object] | None) -> list[str]:
        return [part for key, value in sorted((mapping or {}).items()) for part in (flag, f"{key}={value}")]

    def build_args(self, context: str | Path, tag: str | None = None, *, target: str | None = None,
                   build_args: Mapping[str, str] | None = None, dockerfile: str | Path | None = None,
                   secrets: Mapping[str, str | Path] | None = None, labels: Mapping[str, str] | None = None,
                   iidfile: str | Path | None = None, pull: str | None = None) -> list[str]:
        return self.argv(
            "build",
            ("--file", dockerfile) if dockerfile else None,
            ("--tag", tag) if tag else None,
            ("--target", target) if target else None,
            self._pairs("--build-arg", build_args),
            self._pairs("--label", labels),
            [part for sid, src in sorted((secrets or {}).items())
             for part in ("--secret", f"id={sid},src={src}")],
            f"--pull={pull}" if pull else None,
            ("--iidfile", iidfile) if iidfile else None,
            str(context),
        )

    def run_args(self, image: str, command: Sequence[str] | None = None, *, name: str | None = None,
                 detach: bool = False, remove: bool = False, ports: Iterable[tuple] = (),
                 env: Mapping[str, str] | None = None, labels: Mapping[str, str] | None = None,
                 entrypoint: str | None = None, user: str | None = None, workdir: str | None = None,
                 init: bool = False, extra: Sequence[str] = ()) -> list[str]:
        """``run`` arguments; ``ports`` holds (host ip, host port, container port) triples."""
        return self.argv(
            "run",
            "--detach" if detach else None,
            "--rm" if remove else None,
            "--init" if init else None,
            ("--name", name) if name else None,
            [("--publish", f"{ip}:{host}:{ctr}" if ip else f"{host}:{ctr}") for ip, host, ctr in ports],
            self._pairs("--env", env),
            self._pairs("--label", labels),
            ("--entrypoint", entrypoint) if entrypoint is not None else None,
            ("--user", user) if user else None,
            ("--workdir", workdir) if workdir else None,
            list(extra),
            image,
            list(command or []),
        )

    # ---- running the CLI

    def call(self, *args, timeout: float | None = DEFAULT_TIMEOUT, check: bool = True,
             what: str | None = None, cwd: str | Path | None = None) -> subprocess.CompletedProcess:
        """Run ``<engine> *args`` with captured text output; ShipError when it fails and ``check``."""
        cmd = self.argv(*args)
        what = what or f"{self.name} {cmd[1] if len(cmd) > 1 else ''}".strip()
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=timeout, cwd=cwd)
        except subprocess.TimeoutExpired:
            raise ShipError(f"{what}: no answer within {timeout:.0f}s") from None
        except OSError as exc:
            raise ShipError(f"{what}: cannot run {self.exe}: {exc.strerror or exc}") from None
        if check and proc.returncode != 0:
            raise ShipError(f"{what} failed: {_shorten(_last_line(proc.stderr or proc.stdout))}")
        return proc

    def listing(self, *args, attempts: int = LISTING_ATTEMPTS) -> subprocess.CompletedProcess:
        """A listing command (``images``, ``ps``), asked again when it failed because an object
        it was reading went away meanwhile: Podman lists ids first and then reads each one, so
        another process removing an image or container in between fails the whole listing
        ("locating image with ID ...: image not known")."""
        for attempt in range(attempts):
            proc = self.call(*args, check=False)
            if proc.returncode == 0:
                return proc
            if not _is_missing(proc.stderr) or attempt == attempts - 1:
                break
            time.sleep(0.05 * 2 ** attempt)
        raise ShipError(f"{self.name} {args[0]} failed: {_shorten(_last_line(proc.stderr or proc.stdout))}")

    def popen(self, *args, **kwargs) -> subprocess.Popen:
        """Start ``<engine> *args`` (for streams such as ``logs --follow``)."""
        return subprocess.Popen(self.argv(*args), **kwargs)

    # ---- images

    def build(self, context: str | Path, tag: str | None = None, target: str | None = None,
              build_args: Mapping[str, str] | None = None, dockerfile: str | Path | None = None, *,
              secrets: Mapping[str, str | Path] | None = None, labels: Mapping[str, str] | None = None,
              on_output: OutputCallback | None = None, timeout: float | None = 1800) -> str:
        """Build ``context`` and return the image id (``sha256:<hex>``).

        Output goes line by line to ``on_output`` (if given). A failure raises a
        one-line ShipError naming the failing step, or saying how to get the
        base image when that is what is missing.
        """
        context = Path(context)
        with tempfile.TemporaryDirectory(prefix="ship-build-") as tmp:
            iidfile = Path(tmp) / "iid"
            cmd = self.build_args(context, tag, target=target, build_args=build_args, dockerfile=dockerfile,
                                  secrets=secrets, labels=labels, iidfile=iidfile)
            code, tail = self._run_build(cmd, on_output, timeout)
            if code != 0 and _cache_lookup_race(tail):
                # Buildah before 1.43: a cache lookup fails when another process removes an image
                # between the lookup's listing and its check (containers/buildah#5674); Buildah's
                # own fix ignores the vanished layer and goes on, which a second run does here.
                if on_output is not None:
                    on_output(f"{self.name} build: an image vanished during the cache lookup; building again")
                code, tail = self._run_build(cmd, on_output, timeout)
            if code != 0:
                self._build_failed(tail, context, tag, build_args, dockerfile)
            try:
                image_id = iidfile.read_text().strip()
            except FileNotFoundError:
                image_id = ""
        if not image_id and tag:
            image_id = self.image_id(tag) or ""
        if not image_id:
            raise ShipError(f"{self.name} build of {tag or context} reported success but named no image")
        return normalize_id(image_id)

    def _run_build(self, cmd: list[str], on_output: OutputCallback | None,
                   timeout: float | None) -> tuple[int, list[str]]:
        """Run one build command: its exit code and its last 200 lines."""
        tail: collections.deque[str] = collections.deque(maxlen=200)
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1)
        except OSError as exc:
            raise ShipError(f"{self.name} build: cannot run {self.exe}: {exc.strerror or exc}") from None
        assert proc.stdout is not None  # stdout=PIPE
        timer = threading.Timer(timeout, proc.kill) if timeout else None
        if timer:
            timer.start()
        try:
            for line in proc.stdout:
                line = line.rstrip("\n")
                tail.append(line)
                if on_output is not None:
                    on_output(line)
            code = proc.wait()
        finally:
            if timer:
                timer.cancel()
            proc.stdout.close()
        return code, list(tail)

    def _build_failed(self, lines: list[str], context: Path, tag: str | None,
                      build_args: Mapping[str, str] | None, dockerfile: str | Path | None):
        what = f"{self.name} build of {tag or context}"
        base = (build_args or {}).get("BASE_IMAGE") or dockerfile_arg(
            Path(dockerfile) if dockerfile else context / "Dockerfile", "BASE_IMAGE")
        if base and _mentions_pull_failure(lines, base) and not self.image_exists(base):
            raise ShipError(
                f"{what} failed: base image {base} is neither here nor pullable "
                f"({_shorten(failing_step(lines), 160)}); get one with `{SETUP_SCRIPT}` and build with "
                f"--build-arg BASE_IMAGE={LOCAL_BASE_IMAGE}, or set BASE_IMAGE to a local image")
        raise ShipError(f"{what} failed: {failing_step(lines)}")

    def image_inspect(self, ref: str) -> dict:
        """``image inspect`` of ``ref`` as a dict; ShipError if there is no such image."""
        proc = self.call("image", "inspect", ref, check=False)
        if proc.returncode != 0:
            raise ShipError(f"{self.name}: no image {ref} ({_shorten(_last_line(proc.stderr))})")
        data = json.loads(proc.stdout)
        return data[0] if isinstance(data, list) else data

    def image_exists(self, ref: str) -> bool:
        return self.call("image", "inspect", "--format", "{{.Id}}", ref, check=False).returncode == 0

    def image_id(self, ref: str) -> str | None:
        """``sha256:<hex>`` of ``ref`` (a tag or id), or None when there is no such image."""
        proc = self.call("image", "inspect", "--format", "{{.Id}}", ref, check=False)
        if proc.returncode != 0 or not proc.stdout.strip():
            return None
        return normalize_id(proc.stdout.strip().splitlines()[0])

    def image_size(self, ref: str) -> int:
        """Size of the image in bytes, as ``images`` reports it."""
        return int(self.image_inspect(ref).get("Size") or 0)

    def images(self, reference: str | None = None) -> list[dict]:
        """``images`` as dicts with id, repository, tag (optionally filtered by reference)."""
        proc = self.listing("images", ("--filter", f"reference={reference}") if reference else None,
                            "--format", "{{.ID}}\t{{.Repository}}\t{{.Tag}}")
        out = []
        for line in proc.stdout.splitlines():
            if line.strip():
                iid, repo, tag = (line.split("\t") + ["", ""])[:3]
                out.append({"id": iid, "repository": repo, "tag": tag})
        return out

    def build_cache(self) -> set[str]:
        """Ids (``sha256:<hex>``) of the untagged images that builds made here left: their
        intermediate steps and stages (the build cache), and images whose tags were removed."""
        proc = self.listing("images", "--all", "--no-trunc", ("--filter", f"label={BUILD_LABEL}"),
                            "--format", "{{.ID}}\t{{.Repository}}\t{{.Tag}}")
        rows = [line.split("\t") for line in proc.stdout.splitlines() if line.strip()]
        return {normalize_id(row[0]) for row in rows if len(row) == 3 and row[1:] == ["<none>", "<none>"]}

    def remove_unused_images(self, ids: Iterable[str]) -> int:
        """Remove these images, those that no tagged image or container uses (no --force), in one
        call: the engine removes children before their parents. Returns how many went."""
        doomed = sorted({normalize_id(i) for i in ids})
        if not doomed:
            return 0
        self.call("rmi", *doomed, check=False, timeout=600)
        left = {normalize_id(line) for line in self.listing("images", "--all", "--quiet", "--no-trunc").stdout.split()}
        return len(set(doomed) - left)

    def rm_image(self, ref: str, force: bool = False) -> None:
        proc = self.call("rmi", "--force" if force else None, ref, check=False)
        if proc.returncode != 0 and not _is_missing(proc.stderr):
            raise ShipError(f"{self.name} rmi {ref} failed: {_shorten(_last_line(proc.stderr))}")

    def tag(self, ref: str, new_tag: str) -> None:
        self.call("tag", ref, new_tag)

    def save(self, ref: str, dest: str | Path, fmt: str | None = None) -> Path:
        """Write ``ref`` to a tar file (podman: ``fmt`` docker-archive or oci-archive)."""
        fmt_args = ("--format", fmt) if fmt and self.name == "podman" else None
        self.call("save", fmt_args, "--output", dest, ref, timeout=600)
        return Path(dest)

    def load(self, tarball: str | Path) -> str:
        """Load a tar file written by ``save``; returns the engine's last output line."""
        return _last_line(self.call("load", "--input", tarball, timeout=600).stdout)

    # ---- containers

    def run(self, image: str, command: Sequence[str] | None = None, *, detach: bool = False,
            timeout: float | None = DEFAULT_TIMEOUT, check: bool = True, **options) -> subprocess.CompletedProcess:
        """``run`` (see ``run_args`` for the options); with ``detach`` stdout is the container id."""
        cmd = self.run_args(image, command, detach=detach, **options)
        return self.call(cmd[1:], timeout=timeout, check=check, what=f"{self.name} run {image}")

    def stop(self, container: str, timeout: float = 10) -> None:
        """``stop -t``: SIGTERM (the image's stop signal), SIGKILL after ``timeout`` seconds."""
        seconds = max(0, int(round(timeout)))
        proc = self.call("stop", "--time", seconds, container, timeout=seconds + 60, check=False)
        if proc.returncode != 0 and not _is_missing(proc.stderr):
            raise ShipError(f"{self.name} stop {container} failed: {_shorten(_last_line(proc.stderr))}")

    def _force(self) -> list[str]:
        """``rm``'s flags that remove a running container at once: Docker's ``--force`` kills it;
        Podman's stops it first, waiting up to 10 s for a main process that ignores SIGTERM (a
        shell, ``sleep``, a program without a handler, as PID 1), unless ``--time 0``."""
        return ["--force", "--time", "0"] if self.name == "podman" else ["--force"]

    def remove_container(self, container: str, force: bool = True) -> None:
        """``rm -f`` (a running container is killed at once); a container that is already gone is fine."""
        proc = self.call("rm", self._force() if force else None, container, check=False)
        if proc.returncode != 0 and not _is_missing(proc.stderr):
            raise ShipError(f"{self.name} rm {container} failed: {_shorten(_last_line(proc.stderr))}")

    def containers(self, label: str | None = None, name: str | None = None) -> list[str]:
        """Ids of containers (running or not) with ``label`` (``key`` or ``key=value``) or ``name``."""
        proc = self.listing("ps", "--all", "--no-trunc",
                            ("--filter", f"label={label}") if label else None,
                            ("--filter", f"name={name}") if name else None,
                            "--format", "{{.ID}}")
        return [line.strip() for line in proc.stdout.splitlines() if line.strip()]

    def remove_containers(self, label: str) -> int:
        """Force-remove every container carrying ``label`` (killed at once); returns how many there were."""
        ids = self.containers(label=label)
        if ids:
            proc = self.call("rm", self._force(), ids, check=False)
            if proc.returncode != 0 and not _is_missing(proc.stderr):
                raise ShipError(f"{self.name} rm of containers labelled {label} failed: "
                                f"{_shorten(_last_line(proc.stderr))}")
        return len(ids)

    def container_inspect(self, container: str) -> dict | None:
        proc = self.call("container", "inspect", container, check=False)
        if proc.returncode != 0:
            return None
        data = json.loads(proc.stdout)
        return data[0] if isinstance(data, list) and data else None

    def container_state(self, container: str) -> tuple[bool, int | None] | None:
        """(running, exit code) of ``container``, or None when it does not exist."""
        proc = self.call("container", "inspect", "--format", "{{.State.Running}} {{.State.ExitCode}}",
                         container, check=False)
        if proc.returncode != 0:
            return None
        running, _, code = proc.stdout.strip().partition(" ")
        if running == "true":
            return True, None
        try:
            return False, int(code)
        except ValueError:
            return False, None

    def logs_args(self, container: str, follow: bool = True) -> list[str]:
        return self.argv("logs", "--follow" if follow else None, container)

    def stats_args(self, containers: Sequence[str]) -> list[str]:
        """One snapshot of the containers' resource use, one JSON object per line: Podman's own
        counters (``CPUNano`` cumulative, ``MemUsage`` bytes), Docker's formatted columns
        (``CPUPerc``, ``MemUsage``)."""
        fmt = "{{json .ContainerStats}}" if self.name == "podman" else "{{json .}}"
        return self.argv("stats", "--no-stream", "--format", fmt, list(containers))

    def exec(self, container: str, command: Sequence[str], *, user: str | None = None,
             timeout: float | None = DEFAULT_TIMEOUT, check: bool = True) -> subprocess.CompletedProcess:
        return self.call("exec", ("--user", user) if user else None, container, list(command),
                         timeout=timeout, check=check, what=f"{self.name} exec {container}")

    # ---- compose

    def compose_argv(self, *args) -> list[str]:
        """A compose command line for this engine: ``docker compose`` (or ``docker-compose``),
        ``podman-compose`` (or ``podman compose``)."""
        if self.name == "docker":
            plugin = subprocess.run([self.exe, "compose", "version"], stdin=subprocess.DEVNULL,
                                    capture_output=True).returncode == 0
            prefix = [self.exe, "compose"] if plugin or not shutil.which("docker-compose") else ["docker-compose"]
        else:
            tool = shutil.which("podman-compose")
            prefix = [tool] if tool else [self.exe, "compose"]
        return prefix + self.argv(*args)[1:]


# --------------------------------------------------------------------------- build output


_ERROR_LINE = re.compile(r"^\s*(error|ERROR)\b[:\s]|^\s*Error:")
# Step headers and separators of podman/buildah and BuildKit output.
_CHATTER = re.compile(r"^(\[\d+/\d+\] )?STEP \d+|^-->|^-{3,}|^#\d+ \[|^Dockerfile:\d+|^\d+ \|")
_PULL_FAILURE = re.compile(
    r"pull|registry|manifest unknown|not found|no such host|dial tcp|short-name|resolve|"
    r"creating build container|failed to solve with frontend|failed to resolve source metadata",
    re.IGNORECASE)


def failing_step(lines: Sequence[str]) -> str:
    """One line for a failed build: the last error line, plus the output line just before it
    (the failing command's own last words) when that is not build chatter."""
    cleaned = [ln.strip() for ln in lines if ln.strip()]
    if not cleaned:
        return "no output"
    idx = max((i for i, ln in enumerate(cleaned) if _ERROR_LINE.search(ln)), default=len(cleaned) - 1)
    error = _shorten(cleaned[idx], 400)
    prev = cleaned[idx - 1] if idx > 0 else ""
    if prev and not _CHATTER.search(prev) and prev not in error:
        return f"{error} (last output: {_shorten(prev, 200)})"
    return error


def _mentions_pull_failure(lines: Sequence[str], base: str) -> bool:
    text = "\n".join(lines[-20:])
    name = base.split("@")[0]
    return bool(_PULL_FAILURE.search(text)) and (name in text or name.split(":")[0].split("/")[-1] in text)


def _is_missing(stderr: str | None) -> bool:
    return bool(re.search(r"no such (container|image|object)|not known|does not exist|not found",
                          stderr or "", re.IGNORECASE))


def dockerfile_arg(dockerfile: Path, name: str) -> str | None:
    """The default of ``ARG <name>=...`` in ``dockerfile`` (None if absent)."""
    try:
        text = dockerfile.read_text()
    except OSError:
        return None
    m = re.search(rf"^\s*ARG\s+{re.escape(name)}=(\S+)", text, re.MULTILINE | re.IGNORECASE)
    return m.group(1).strip("\"'") if m else None


# --------------------------------------------------------------------------- detection

_lock = threading.Lock()
_cache: dict[str, tuple[Engine | None, tuple[Probe, ...]]] = {}


def _choices() -> tuple[str, ...]:
    forced = os.environ.get(ENV_VAR, "").strip().lower()
    if not forced:
        return ENGINES
    if forced not in ENGINES:
        raise ShipError(f"{ENV_VAR}={forced!r} is not one of {', '.join(ENGINES)}")
    return (forced,)


def _detect() -> tuple[Engine | None, tuple[Probe, ...]]:
    choices = _choices()
    key = ",".join(choices)
    with _lock:
        if key not in _cache:
            probes = []
            found = None
            for name in choices:
                for timeout in PROBE_TIMEOUTS:
                    result = probe(name, timeout)
                    if not result.timed_out:
                        break
                probes.append(result)
                if result.ok:
                    found = Engine(name)
                    break
            _cache[key] = (found, tuple(probes))
        return _cache[key]


def detect() -> Engine | None:
    """The engine that answers (probed once per process), or None."""
    return _detect()[0]


def probes() -> tuple[Probe, ...]:
    """What each probe said (for messages and skip reasons)."""
    return _detect()[1]


def reset() -> None:
    """Forget the cached probe (tests; after installing an engine)."""
    with _lock:
        _cache.clear()


def unavailable_reason() -> str:
    """Why no engine answers, in one line ("" when one does)."""
    found, results = _detect()
    if found is not None:
        return ""
    failed = "; ".join(f"`{p.name} {PROBE_ARGS[0]}` failed: {p.reason}" for p in results)
    if os.environ.get(ENV_VAR, "").strip():
        return f"{ENV_VAR}={os.environ[ENV_VAR].strip()} but {failed}"
    return f"no container engine answers: start Docker, or install Podman ({SETUP_SCRIPT}); {failed}"


def require() -> Engine:
    """The engine, or a ShipError that says how to get one."""
    found = detect()
    if found is None:
        raise ShipError(unavailable_reason())
    return found
