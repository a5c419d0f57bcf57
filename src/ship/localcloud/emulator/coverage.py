"""What the local cloud implements, per AWS service and operation, generated from the code.

Each operation of a service (the operations botocore's model lists) is one of:

* **acted on**: the local cloud does what AWS does with it: a data plane acts on its effect
  (runs the tasks, forwards through the listener, health-checks the targets) or the answer is
  computed from the real state (task and target states, filtered log events, image bytes);
* **stored**: moto keeps what it is given and answers from it; nothing acts on it;
* **fails fast**: not implemented; it answers at once with UnknownOperationException /
  NotImplemented (``unimplemented.py``).

An operation whose handler ship patches to answer as AWS does is marked with ``*``.

"Acted on" is declared where the acting happens: ``ACTED_ON`` in the emulator module of the
service (every emulator module declares it; a service without an emulator module acts on
nothing). Everything else is read from the code: whether moto has a handler for the operation
and whether ship replaced it.

``python -m ship.localcloud.emulator.coverage --write`` regenerates docs/localcloud-coverage.md;
``--check`` (and tests/localcloud/test_coverage.py) fails when the committed table is stale.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

DOC = Path(__file__).resolve().parents[4] / "docs" / "localcloud-coverage.md"

# botocore service -> (moto responses module, class, ship emulator module or None, listed in detail)
SERVICES = {
    "ecs": ("moto.ecs.responses", "EC2ContainerServiceResponse", "ecs", True),
    "elbv2": ("moto.elbv2.responses", "ELBV2Response", "elbv2", True),
    "ecr": ("moto.ecr.responses", "ECRResponse", "ecr", True),
    "logs": ("moto.logs.responses", "LogsResponse", "logs", True),
    "application-autoscaling": ("moto.applicationautoscaling.responses", "ApplicationAutoScalingResponse",
                                "autoscaling", True),
    "ec2": ("moto.ec2.responses", "EC2Response", None, False),
    "iam": ("moto.iam.responses", "IamResponse", None, False),
    "sts": ("moto.sts.responses", "TokenResponse", None, False),
    "cloudwatch": ("moto.cloudwatch.responses", "CloudWatchResponse", None, False),
}


@dataclass
class ServiceCoverage:
    service: str
    acted_on: list[str] = field(default_factory=list)
    stored: list[str] = field(default_factory=list)
    fails_fast: list[str] = field(default_factory=list)
    patched: set[str] = field(default_factory=set)
    detailed: bool = True


def _snake(name: str) -> str:
    from moto.core.utils import camelcase_to_underscores

    return camelcase_to_underscores(name)


def _is_ship(fn) -> bool:
    return (getattr(fn, "__module__", "") or "").startswith("ship.")


def _acted_on(module: str | None) -> set[str]:
    """The operations the emulator module of a service declares its data plane acts on."""
    if not module:
        return set()
    return set(importlib.import_module(f"ship.localcloud.emulator.{module}").ACTED_ON)


def service_coverage(service: str) -> ServiceCoverage:
    """Classify every operation of one service (the emulator's patches must be installed)."""
    import botocore.session

    responses, cls_name, module, detailed = SERVICES[service]
    Resp = getattr(importlib.import_module(responses), cls_name)
    backend = _backend_class(Resp)
    acted = _acted_on(module)
    cov = ServiceCoverage(service, detailed=detailed)
    for op in sorted(botocore.session.get_session().get_service_model(service).operation_names):
        handler = getattr(Resp, _snake(op), None)
        if handler is None:
            cov.fails_fast.append(op)
            continue
        if _is_ship(handler) or _is_ship(getattr(backend, _snake(op), None)):
            cov.patched.add(op)
        (cov.acted_on if op in acted else cov.stored).append(op)
    return cov


def _backend_class(Resp):
    """The backend class behind a response class (its patched methods count as the operation's)."""
    from moto.core.base_backend import BaseBackend

    models = importlib.import_module(Resp.__module__.rsplit(".", 1)[0] + ".models")
    for value in vars(models).values():
        # A BaseBackend: moto's models also hold other classes named *Backend (elbv2's FakeBackend).
        if isinstance(value, type) and issubclass(value, BaseBackend) and value.__module__ == models.__name__:
            return value
    return None


def coverage() -> list[ServiceCoverage]:
    return [service_coverage(s) for s in SERVICES]


def _versions() -> str:
    import botocore
    import moto

    return f"moto {moto.__version__}, botocore {botocore.__version__}"


def _names(ops: list[str], patched: set[str]) -> str:
    return ", ".join(f"{op}*" if op in patched else op for op in ops) or "-"


def render(covs: list[ServiceCoverage]) -> str:
    lines = [
        "# What the local cloud implements",
        "",
        "Generated from the code by `python -m ship.localcloud.emulator.coverage --write` "
        f"({_versions()}); `tests/localcloud/test_coverage.py` fails when this file is stale.",
        "",
        "- **acted on**: the local cloud does what AWS does with it: a data plane acts on it (runs the "
        "tasks, forwards through the listener, health-checks the targets) or the answer comes from the real "
        "state (task and target states, filtered log events, image bytes).",
        "- **stored**: the emulator (moto) keeps what it is given and answers from it; nothing acts on it.",
        "- **fails fast**: not implemented; answers at once with `UnknownOperationException` (JSON "
        "protocols, HTTP 400) or `NotImplemented` (XML protocols, HTTP 501), which SDKs do not retry, "
        "and the local cloud logs it.",
        "- `*` after an operation: ship patches moto's answer to match AWS.",
        "",
        "| service | acted on | stored | fails fast |",
        "|---|---:|---:|---:|",
    ]
    for c in covs:
        lines.append(f"| {c.service} | {len(c.acted_on)} | {len(c.stored)} | {len(c.fails_fast)} |")
    lines += ["", "Services not listed have no rows here: what moto implements for them is stored, "
              "anything else fails fast.", ""]
    for c in covs:
        lines += [f"## {c.service}", ""]
        lines.append(f"- **acted on** ({len(c.acted_on)}): {_names(c.acted_on, c.patched)}")
        if c.detailed:
            lines.append(f"- **stored** ({len(c.stored)}): {_names(c.stored, c.patched)}")
            lines.append(f"- **fails fast** ({len(c.fails_fast)}): {_names(c.fails_fast, c.patched)}")
        else:
            patched = sorted(c.patched)
            lines.append(f"- **stored** ({len(c.stored)}): every operation moto implements"
                         + (f"; patched: {_names(patched, c.patched)}" if patched else ""))
            lines.append(f"- **fails fast** ({len(c.fails_fast)}): every other operation of the service")
        lines.append("")
    return "\n".join(lines)


_BLOBS: tempfile.TemporaryDirectory | None = None   # one per process, removed when it exits


def _install() -> None:
    global _BLOBS
    from ship import oci
    from ship.localcloud import emulator

    if _BLOBS is None:
        _BLOBS = tempfile.TemporaryDirectory(prefix="ship-coverage-")
    emulator.install(oci.BlobStore(Path(_BLOBS.name)))


def generated_versions(text: str) -> str | None:
    m = re.search(r"\((moto [^,]+, botocore [^)]+)\)", text)
    return m.group(1) if m else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ship.localcloud.emulator.coverage",
                                     description="The local cloud's coverage table (docs/localcloud-coverage.md).")
    parser.add_argument("--write", action="store_true", help="write the table to the docs")
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed table is stale")
    args = parser.parse_args(argv)
    _install()
    text = render(coverage())
    if args.write:
        DOC.parent.mkdir(parents=True, exist_ok=True)
        DOC.write_text(text)
        print(f"wrote {DOC}")
    elif args.check:
        current = DOC.read_text() if DOC.is_file() else ""
        if current != text:
            print(f"{DOC} is stale: run python -m ship.localcloud.emulator.coverage --write", file=sys.stderr)
            return 1
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
