"""The emulator's whole state as one value: moto's backends and the stores beside them.

``capture()`` (under ``LOCK``) takes every backend moto has created, per
service, account and region, and every store (``emulator.stores()``);
``dumps``/``loads`` turn that into bytes and back with the standard pickle
protocol, and ``install`` puts a loaded state in place of moto's, before the
local cloud serves anything. One pickle for everything, so references
between services (and between a store and moto's objects) stay references.

What moto rebuilds by itself is not copied: the AWS-managed IAM policies it
loads into every account and partition (about 1,600, 24 MB once pickled) and
the public AMIs it loads into every EC2 region (about 1,300, with a snapshot
each: most of a snapshot's time) are left out and taken from a fresh backend
on load, and references to them are resolved to those. Locks inside moto's objects are saved as fresh locks; a
live ``BackendDict`` referenced from inside a backend stays the live one.

``fingerprint()`` is what decides whether a snapshot can be loaded: moto's version
and each store's ``version`` (bumped by hand when a store's shape changes).
"""

from __future__ import annotations

import importlib
import io
import pickle
import sys
import threading
from typing import Any

from ship.localcloud import emulator

# Services whose backends are moto's own machinery, not AWS state.
SKIP_SERVICES = {"moto_api"}
PROTOCOL = 5

_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))


def fingerprint() -> dict:
    """What a snapshot must have been written with to be loaded here: moto's version (its
    classes are most of the pickle) and the version of every store (the shape of what the
    emulator's own modules put in it). Code changes that keep those shapes do not count:
    a snapshot outlives them."""
    import moto

    return {"moto": moto.__version__, "stores": {s.name: s.version for s in emulator.stores()}}


def _backend_dicts() -> dict[tuple[str, str], Any]:
    """(module, attribute) -> every BackendDict moto has put to use."""
    from moto.core.base_backend import BackendDict

    out = {}
    instances: list[Any] = list(getattr(BackendDict, "_instances"))   # moto's registry of BackendDicts in use
    for bd in instances:
        if bd.service_name in SKIP_SERVICES:
            continue
        where = _where(bd)
        if where is not None:
            out[where] = bd
    return out


def _where(bd) -> tuple[str, str] | None:
    module = sys.modules.get(bd.backend.__module__)
    candidates = [module] if module is not None else []
    candidates += [m for name, m in list(sys.modules.items()) if name.startswith("moto.") and m is not module]
    for mod in candidates:
        for attr, value in list(vars(mod).items()):
            if value is bd:
                return mod.__name__, attr
    return None


def capture() -> dict:
    """Everything, as plain dicts (call under ``emulator.LOCK``)."""
    backends = {}
    for where, bd in _backend_dicts().items():
        # list() first: moto may add a backend on another thread (the warm-up) meanwhile
        backends[where] = {account: dict(list(dict.items(regions))) for account, regions in list(dict.items(bd))}
    return {"backends": backends, "stores": {s.name: s.get() for s in emulator.stores()}}


def counts(state: dict) -> dict[str, int]:
    """How many (account, region) backends each service has: for messages."""
    out: dict[str, int] = {}
    for (module, _attr), accounts in state.get("backends", {}).items():
        name = module.split(".")[1] if module.startswith("moto.") else module
        out[name] = out.get(name, 0) + sum(len(r) for r in accounts.values())
    return out


# --------------------------------------------------------------------------- pickling
#
# Reductions by exact type (a pickler's dispatch_table), so pickling runs at C speed:
# a per-object Python hook (persistent_id, reducer_override) made it twice as slow.


def _live_backend_dict(module: str, attr: str):
    return getattr(importlib.import_module(module), attr)


def _aws_managed_policy(account: str, partition: str, arn: str, attachments: int):
    """An AWS-managed policy: the one moto's fresh IAM backend for the account loaded."""
    from moto.iam.models import iam_backends

    policy = iam_backends[account][partition].managed_policies.get(arn)
    if policy is None:
        raise pickle.UnpicklingError(f"AWS-managed policy {arn} is not in this moto")
    policy.attachment_count = attachments
    return policy


def _bare(cls):
    return cls.__new__(cls)


def _reduce_iam_backend(backend):
    """An IAM backend without the ~1,300 AWS-managed policies moto loads into every one."""
    from moto.iam.models import AWSManagedPolicy

    state = dict(vars(backend))
    state.pop("aws_managed_policies", None)
    state["managed_policies"] = {arn: p for arn, p in backend.managed_policies.items()
                                 if type(p) is not AWSManagedPolicy}
    return _bare, (type(backend),), state


def _after_load_iam(backend, account: str, partition: str) -> None:
    """Give a restored IAM backend the AWS-managed policies of a fresh one (those that the
    restored roles reference, through ``_aws_managed_policy``)."""
    from moto.iam.models import iam_backends

    fresh = iam_backends[account][partition]
    backend.aws_managed_policies = fresh.aws_managed_policies
    backend.managed_policies = {**{p.arn: p for p in fresh.aws_managed_policies}, **backend.managed_policies}


def _reduce_ec2_backend(backend):
    """An EC2 backend without the ~1,300 public AMIs (and their snapshots) moto loads into
    every region: only the ids of those still registered are kept."""
    defaults = {ami_id for ami_id, ami in backend.amis.items() if getattr(ami, "owner_alias", None) == "amazon"}
    state = dict(vars(backend))
    state["amis"] = {k: v for k, v in backend.amis.items() if k not in defaults}
    state["snapshots"] = {k: v for k, v in backend.snapshots.items() if getattr(v, "from_ami", None) not in defaults}
    state[_DEFAULT_AMIS] = sorted(defaults)
    return _bare, (type(backend),), state


_DEFAULT_AMIS = "_ship_default_amis"


def _after_load_ec2(backend, account: str, region: str) -> None:
    """Give a restored EC2 backend the public AMIs of a fresh one (those it still had)."""
    from moto.ec2.models import ec2_backends

    keep = set(backend.__dict__.pop(_DEFAULT_AMIS, ()))
    fresh = ec2_backends[account][region]
    amis, snapshots = {}, {}
    for ami_id, ami in fresh.amis.items():
        if ami_id not in keep:
            continue
        ami.ec2_backend = backend
        amis[ami_id] = ami
        snap = getattr(ami, "ebs_snapshot", None)
        if snap is not None:
            snap.ec2_backend = backend
            snapshots[snap.id] = snap
    backend.amis = {**amis, **backend.amis}
    backend.snapshots = {**snapshots, **backend.snapshots}


def _dispatch(dicts: dict[tuple[str, str], Any]) -> dict:
    import copyreg

    from moto.ec2.models import EC2Backend
    from moto.iam.models import AWSManagedPolicy, IAMBackend

    live = {id(bd): where for where, bd in dicts.items()}

    def backend_dict(bd):
        where = live.get(id(bd)) or _where(bd)
        if where is None:
            raise pickle.PicklingError(f"a {type(bd).__name__} of {bd.service_name} that no moto module holds")
        return _live_backend_dict, where

    table = copyreg.dispatch_table.copy()
    table[type(threading.Lock())] = lambda _lock: (threading.Lock, ())
    table[type(threading.RLock())] = lambda _lock: (threading.RLock, ())
    table[AWSManagedPolicy] = lambda p: (_aws_managed_policy,
                                         (p.account_id, p.partition, p.arn, p.attachment_count))
    table[IAMBackend] = _reduce_iam_backend
    table[EC2Backend] = _reduce_ec2_backend
    for bd in dicts.values():
        table[type(bd)] = backend_dict
    return table


def dumps(state: dict) -> bytes:
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=PROTOCOL)
    pickler.dispatch_table = _dispatch(_backend_dicts())
    pickler.dump(state)
    return buf.getvalue()


def loads(data: bytes) -> dict:
    from moto.ec2.models import EC2Backend
    from moto.iam.models import IAMBackend

    state = pickle.loads(data)
    if not isinstance(state, dict) or not isinstance(state.get("backends"), dict):
        raise pickle.UnpicklingError("not an emulator state")
    for (module, attr), accounts in state["backends"].items():
        bd = _live_backend_dict(module, attr)
        for account, regions in accounts.items():
            for region, backend in regions.items():
                if not isinstance(backend, bd.backend):
                    raise pickle.UnpicklingError(f"{module}.{attr} holds a {type(backend).__name__}")
                if isinstance(backend, IAMBackend):
                    _after_load_iam(backend, account, region)
                elif isinstance(backend, EC2Backend):
                    _after_load_ec2(backend, account, region)
    known = {s.name: s for s in emulator.stores()}
    for name, value in (state.get("stores") or {}).items():
        store = known.get(name)
        if store is not None and store.check is not None:
            store.check(value)          # before anything is installed: never half-loaded
    return state


def install(state: dict) -> None:
    """Put a loaded state in place of moto's (and the stores'), before serving requests."""
    from moto.core.base_backend import backend_lock

    with backend_lock:
        for (module, attr), accounts in state["backends"].items():
            bd = getattr(importlib.import_module(module), attr)
            dict.clear(bd)
            for account, regions in accounts.items():
                per_account = bd[account]          # moto's own per-account dict, registered as in use
                dict.clear(per_account)
                dict.update(per_account, regions)
    known = {s.name: s for s in emulator.stores()}
    for name, value in state.get("stores", {}).items():
        store = known.get(name)
        if store is not None:
            store.put(value)
    _continue_log_event_ids()


def _continue_log_event_ids() -> None:
    """moto numbers CloudWatch Logs events with a counter on its ``LogEvent`` class, which no
    snapshot holds: a restored local cloud started it again at 0, so new events took the ids of
    restored ones. Their ``eventId`` is what clients tell events apart by (``inv logs`` printed a
    new event whose id it had seen as never new), and FilterLogEvents' paging token is made of it.
    The counter goes on from the highest id restored."""
    from moto.logs.models import LogEvent, logs_backends

    highest = max((event.event_id for account in dict.values(logs_backends) for backend in dict.values(account)
                   for group in backend.groups.values() for stream in group.streams.values()
                   for event in stream.events), default=-1)
    LogEvent._event_id = max(LogEvent._event_id, highest + 1)
