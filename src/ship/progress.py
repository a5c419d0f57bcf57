"""Output a person can read: phases with elapsed time and what each waits on.

A command that takes a minute (``inv deploy``) is told as a few phases
(local cloud, state, image, infrastructure, rollout, health). Each phase has
a start, an end, a one-line result and, while it runs, what it is waiting on.

* On a terminal, finished phases and notable events are printed as lines and
  one status line at the bottom is redrawn a few times a second: the phases
  still running and what they wait on, with a bar while the AWS provider
  sleeps through a wait of known length (an ALB: about 60 s).
* Without a terminal (CI, a pipe), the same lines are printed plainly, plus a
  "still waiting" line every ``PLAIN_HEARTBEAT`` seconds; nothing is redrawn.

The pure parts (``TerraformEvents``: Terraform's progress lines to resource
timings and the critical chain of provider waits; ``render_timeline``) are
separate from the effectful ``Progress`` so they can be tested on their own.
"""

from __future__ import annotations

import re
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, TextIO

# Fixed waits of the hashicorp/aws provider (5.x) that no emulator can shorten,
# by resource type, in seconds: shown as "expected" on the progress bar only.
KNOWN_WAITS = {"aws_lb": 60.0, "aws_alb": 60.0, "aws_vpc": 10.0, "aws_ecs_cluster": 10.0}
# A resource that takes this long against the emulator (whose API answers in
# milliseconds) is the provider waiting, not the emulator working.
PROVIDER_WAIT_MIN = 3.0
PLAIN_HEARTBEAT = 15.0
TICK = 0.2
SPINNER = "|/-\\"


# --------------------------------------------------------------------------- Terraform's lines

_START = re.compile(r"^(?P<addr>[\w.\-\[\]\"]+): (?P<verb>Creating|Modifying|Destroying|Reading)\.\.\.")
_DONE = re.compile(r"^(?P<addr>[\w.\-\[\]\"]+): (?P<verb>Creation|Modifications|Destruction|Read) complete"
                   r"(?: after (?P<after>[\dhms.]+))?")
_VERDICT = re.compile(r"^(Apply complete!|Destroy complete!|No changes\.|Plan: \d+ to add)")
_ERROR = re.compile(r"^[│ ]*Error: ")

_STAMP = re.compile(r"^\[\s*[\d.]+s\]\s*")
_VERBS = {"Creating": "create", "Modifying": "update", "Destroying": "destroy", "Reading": "read"}


def resource_type(address: str) -> str:
    """``module.loadbalancer.aws_lb.this`` -> ``aws_lb``; ``data.x.y`` -> ``x``."""
    parts = [p for p in re.sub(r"\[[^\]]*\]", "", address).split(".") if p]
    while parts and parts[0] == "module" and len(parts) > 2:
        parts = parts[2:]
    if parts and parts[0] == "data":
        parts = parts[1:]
    return parts[0] if parts else address


def short_address(address: str) -> str:
    """``module.loadbalancer.aws_lb.this`` -> ``aws_lb.this`` (what a person scans for)."""
    parts = address.split(".")
    while len(parts) > 2 and parts[0] == "module":
        parts = parts[2:]
    return ".".join(parts)


@dataclass
class Resource:
    address: str
    action: str
    started: float
    ended: float | None = None

    @property
    def seconds(self) -> float:
        return (self.ended or self.started) - self.started

    @property
    def end(self) -> float:
        """When it ended (its start while it runs)."""
        return self.started if self.ended is None else self.ended


@dataclass
class TerraformEvents:
    """What Terraform is doing, from its human-readable progress lines (``-no-color``).

    ``feed(line, now)`` with the time each line was read; Terraform prints a
    resource's "Creating..." when it starts and "Creation complete" when it is
    done, so the resources' timings are measured here, at sub-second precision,
    rather than read from its whole-second "after 1m0s"."""

    resources: dict[str, Resource] = field(default_factory=dict)
    verdict: str = ""
    error: str = ""
    first_change: float | None = None     # when the first resource began to change (its "Creating..." etc.)

    def feed(self, line: str, now: float) -> Resource | None:
        """Take one line; returns the resource whose state it changed (or None)."""
        text = line.strip()
        m = _START.match(text)
        if m:
            addr = m.group("addr")
            if m.group("verb") == "Reading":
                return None
            res = Resource(addr, _VERBS[m.group("verb")], now)
            self.resources[addr] = res
            if self.first_change is None:
                self.first_change = now
            return res
        m = _DONE.match(text)
        if m:
            done = self.resources.get(m.group("addr"))
            if done is not None and done.ended is None:
                done.ended = now
            return done
        if _VERDICT.match(text):
            self.verdict = text
        elif _ERROR.match(line) and not self.error:
            self.error = _ERROR.sub("", line).strip()
        return None

    def in_flight(self) -> list[Resource]:
        return sorted((r for r in self.resources.values() if r.ended is None), key=lambda r: r.started)

    def done(self) -> list[Resource]:
        return sorted((r for r in self.resources.values() if r.ended is not None), key=lambda r: r.end)

    def critical_chain(self, slack: float = 0.75) -> list[Resource]:
        """The chain of resources that decided when the apply ended, read from the timings:
        the last resource to finish, then the one that finished last before it started
        (within ``slack``: Terraform starts a dependent as soon as its dependency is
        done), and so on back to the start."""
        done = self.done()
        if not done:
            return []
        chain = [done[-1]]
        while True:
            head = chain[-1]
            before = [r for r in done if r.end <= head.started + slack and r is not head and r not in chain
                      and r.started < head.started]
            if not before:
                break
            chain.append(max(before, key=lambda r: r.end))
        return list(reversed(chain))

    def provider_waits(self, minimum: float = PROVIDER_WAIT_MIN) -> list[Resource]:
        """The resources on the critical chain that took ``minimum`` seconds or more: on
        an emulator that answers in milliseconds, that time is the provider's own waiting."""
        return [r for r in self.critical_chain() if r.seconds >= minimum]


def waits_text(waits: list[Resource]) -> str:
    """``aws_vpc.this 10.0s + aws_lb.this 60.4s = 70.4s``."""
    if not waits:
        return "none"
    parts = " + ".join(f"{short_address(r.address)} {r.seconds:.1f}s" for r in waits)
    return f"{parts} = {sum(r.seconds for r in waits):.1f}s" if len(waits) > 1 else parts


# --------------------------------------------------------------------------- phases


@dataclass
class Phase:
    name: str
    started: float
    ended: float | None = None
    result: str = ""
    waiting: str = ""
    failed: bool = False
    bar: tuple[float, float] | None = None    # (elapsed, expected) of a wait of known length
    live: Callable[[], tuple[str, tuple[float, float] | None]] | None = None   # (waiting, bar) now

    def now_waiting(self) -> tuple[str, tuple[float, float] | None]:
        if self.live is not None:
            try:
                return self.live()
            except Exception:  # a display must never break the work it shows
                return self.waiting, self.bar
        return self.waiting, self.bar

    def seconds(self, now: float) -> float:
        return (self.ended if self.ended is not None else now) - self.started


def _bar(done: float, total: float, width: int = 16) -> str:
    filled = int(round(width * min(1.0, done / total))) if total > 0 else 0
    return "[" + "#" * filled + "." * (width - filled) + "]"


def status_line(phases: list[Phase], now: float) -> str:
    """Every running phase and what it waits on ("" when none runs)."""
    parts = []
    for p in phases:
        if p.ended is not None:
            continue
        waiting, bar = p.now_waiting()
        text = f"{p.name}: {waiting}" if waiting else f"{p.name} ({p.seconds(now):.0f}s)"
        if bar:
            elapsed, expected = bar
            text += f" {_bar(elapsed, expected)} {elapsed:.0f}/~{expected:.0f}s"
        parts.append(text)
    return " | ".join(parts)


def render_timeline(phases: list[Phase], total: float, width: int = 32) -> list[str]:
    """The summary's timeline: one row per phase, a bar placed on a common time axis."""
    if not phases:
        return []
    total = max(total, max((p.ended or p.started) for p in phases), 1e-6)
    name_w = max(len(p.name) for p in phases)
    rows = [f"  {'phase':<{name_w}}  {'from':>6} {'to':>6} {'took':>7}  {'':<{width}}"]
    for p in phases:
        end = p.ended if p.ended is not None else total
        start_col = int(width * p.started / total)
        end_col = max(start_col + 1, int(round(width * end / total)))
        bar = " " * start_col + ("x" if p.failed else "#") * (end_col - start_col)
        rows.append(f"  {p.name:<{name_w}}  {p.started:6.1f} {end:6.1f} {end - p.started:6.1f}s  "
                    f"{bar:<{width}}  {p.result}".rstrip())
    return rows


class Progress:
    """Phases, lines and (on a terminal) a live status line, safe to use from threads."""

    def __init__(self, out: TextIO | None = None, tty: bool | None = None,
                 clock: Callable[[], float] = time.monotonic, log: Callable[[str], None] | None = None):
        self.out = out or sys.stdout
        self.tty = bool(self.out.isatty()) if tty is None else tty
        self.clock = clock
        self.log = log
        self.t0 = clock()
        self.phases: list[Phase] = []
        self._mu = threading.RLock()
        self._status_shown = False
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._heartbeat = 0.0

    # ---- lifecycle

    def __enter__(self) -> "Progress":
        if self.tty:
            self._ticker = threading.Thread(target=self._tick, name="progress", daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2)
        with self._mu:
            self._clear_status()

    def elapsed(self) -> float:
        return self.clock() - self.t0

    # ---- phases

    def start(self, name: str, waiting: str = "") -> Phase:
        with self._mu:
            phase = Phase(name, self.elapsed(), waiting=waiting)
            self.phases.append(phase)
        return phase

    def wait(self, phase: Phase, text: str, bar: tuple[float, float] | None = None) -> None:
        """Say what ``phase`` waits on now (shown on the status line)."""
        with self._mu:
            phase.waiting, phase.bar = text, bar
        self._maybe_heartbeat()

    def finish(self, phase: Phase, result: str = "", failed: bool = False) -> None:
        with self._mu:
            if phase.ended is not None:
                return
            phase.ended = self.elapsed()
            phase.result, phase.failed, phase.waiting, phase.bar, phase.live = result, failed, "", None, None
            mark = "failed" if failed else "done"
            self.line(f"{phase.name} {mark} in {phase.ended - phase.started:.1f}s" + (f": {result}" if result else ""))

    # ---- lines

    def line(self, text: str) -> None:
        """A permanent line, prefixed with the time since the start."""
        stamped = f"[{self.elapsed():6.1f}s] {text}"
        self.raw(stamped)

    def say(self, text: str) -> None:
        """A line from code that stamps its own lines with elapsed time: ours replaces it."""
        self.line(_STAMP.sub("", text))

    def raw(self, text: str) -> None:
        """A permanent line as it is (the summary)."""
        with self._mu:
            self._clear_status()
            self.out.write(text + "\n")
            self.out.flush()
            if self.log is not None:
                self.log(text)
            self._draw_status()

    # ---- the status line (terminal) / heartbeat (plain)

    def _tick(self) -> None:
        n = 0
        while not self._stop.wait(TICK):
            n += 1
            with self._mu:
                self._draw_status(SPINNER[n % len(SPINNER)])

    def _clear_status(self) -> None:
        if self.tty and self._status_shown:
            self.out.write("\r\x1b[K")
            self._status_shown = False

    def _draw_status(self, spin: str = " ") -> None:
        if not self.tty:
            return
        text = status_line(self.phases, self.elapsed())
        if not text:
            self._clear_status()
            return
        width = max(20, shutil.get_terminal_size((100, 20)).columns - 1)
        self.out.write("\r\x1b[K" + f"{spin} {self.elapsed():5.1f}s  {text}"[:width])
        self.out.flush()
        self._status_shown = True

    def _maybe_heartbeat(self) -> None:
        if self.tty:
            return
        now = self.elapsed()
        if now - self._heartbeat < PLAIN_HEARTBEAT:
            return
        self._heartbeat = now
        text = status_line(self.phases, now)
        if text:
            self.line("still " + text)

    # ---- the record

    def report(self) -> list[dict]:
        with self._mu:
            return [{"phase": p.name, "start": round(p.started, 2),
                     "end": round(p.ended, 2) if p.ended is not None else None,
                     "seconds": round(p.seconds(self.elapsed()), 2), "result": p.result, "failed": p.failed}
                    for p in self.phases]


_PAST = {"create": "created", "update": "updated", "destroy": "destroyed", "read": "read"}
_ING = {"create": "creating", "update": "updating", "destroy": "destroying", "read": "reading"}


class TerraformWatch:
    """Terraform's output for a phase: every line into ``TerraformEvents``, the phase's
    status from what is in flight, and a line for each of the provider's long waits.
    With ``verbose``, every line of Terraform's output is printed as well."""

    def __init__(self, progress: Progress, phase: Phase, verbose: bool = False):
        self.progress, self.phase, self.verbose = progress, phase, verbose
        self.events = TerraformEvents()
        self._mu = threading.Lock()
        phase.live = self.waiting

    def __call__(self, line: str) -> None:
        now = self.progress.elapsed()
        with self._mu:
            res = self.events.feed(line, now)
        if self.verbose and line.strip():
            self.progress.line(line.rstrip())
        elif res is not None and res.ended is not None and res.seconds >= PROVIDER_WAIT_MIN:
            self.progress.line(f"{short_address(res.address)} {_PAST[res.action]} after {res.seconds:.1f}s")
        elif res is not None and res.ended is None and resource_type(res.address) in KNOWN_WAITS:
            expected = KNOWN_WAITS[resource_type(res.address)]
            self.progress.line(f"{_ING[res.action]} {short_address(res.address)}: the AWS provider waits "
                               f"about {expected:.0f}s here, whatever the API answers")
        self.progress.wait(self.phase, self.phase.waiting)

    def before_first_change(self) -> float | None:
        """Seconds from the phase's start (the command's) to the first resource that began to change:
        Terraform's own time (its provider check, schemas, the plan), which no API answer shortens."""
        with self._mu:
            first = self.events.first_change
        return None if first is None else max(0.0, first - self.phase.started)

    def waiting(self) -> tuple[str, tuple[float, float] | None]:
        now = self.progress.elapsed()
        with self._mu:
            flight = self.events.in_flight()
            done = len(self.events.done())
        if not flight:
            return ("terraform: planning" if not done else f"terraform: {done} done"), None
        slow = min(flight, key=lambda r: r.started)
        elapsed = now - slow.started
        expected = KNOWN_WAITS.get(resource_type(slow.address)) if slow.action == "create" else None
        more = f" (+{len(flight) - 1} more)" if len(flight) > 1 else ""
        text = f"{_ING[slow.action]} {short_address(slow.address)}{more}"
        if expected:
            return text, (elapsed, expected)
        return f"{text} {elapsed:.0f}s", None
