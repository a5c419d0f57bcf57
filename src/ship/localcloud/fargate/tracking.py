"""Target tracking scaling of one ECS service as a pure function: the metric's datapoints,
the policies, the scalable target's limits, the current desired count and the time in;
a new desired count (or a reason not to scale) out. No I/O, no clock, no emulator.

The rules and where AWS documents them:

TT https://docs.aws.amazon.com/autoscaling/application/userguide/target-tracking-scaling-policy-overview.html
ECS https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-autoscaling-targettracking.html
API https://docs.aws.amazon.com/autoscaling/application/APIReference/API_TargetTrackingScalingPolicyConfiguration.html
NS https://docs.aws.amazon.com/autoscaling/application/APIReference/API_NotScaledReason.html
SA https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-scaling-activities.html

* the two alarms a policy gets (TT, "How it works"): the scale-out alarm (``AlarmHigh``) is in
  ALARM when the metric is above the target for 3 consecutive one-minute datapoints; the
  scale-in alarm (``AlarmLow``) when it is below 90 % of the target for 15 consecutive
  datapoints ("removing capacity only when utilization passes a threshold that is far enough
  below the target value (usually more than 10% lower)"). The counts are those of the alarms
  Application Auto Scaling creates for ECS (moto mirrors them: 3 and 15 periods of 60 s);
* insufficient data never scales, either way (ECS, "Considerations");
* the new capacity is proportional to the metric: ceil(capacity x metric / target), rounded
  up in both directions so that scaling out adds enough and scaling in never removes too much
  (TT, "Considerations": "we act conservatively by rounding up or down");
* several policies (TT, "Multiple scaling policies"): scale out when any policy's scale-out
  alarm fires, scale in only when every policy with scale-in enabled is ready to scale in; the
  policy that gives the largest capacity wins (PutScalingPolicy: "precedence to the policy
  that provides the largest capacity for both scale out and scale in");
* ``ScaleOutCooldown`` (API): while it runs, the capacity the last scale-out added counts as
  part of the desired capacity of the next one: the next scale-out is computed from the
  capacity before it, and happens only when it asks for more;
* ``ScaleInCooldown`` (API): no scale-in until it has passed since the last scale-in; a
  scale-out is not blocked by it ("scales out your scalable target immediately");
* ``DisableScaleIn`` (API): the policy never scales in (and is left out of "every policy");
* ``SuspendedState`` of the scalable target: ``DynamicScalingOutSuspended`` /
  ``DynamicScalingInSuspended`` stop that direction;
* MinCapacity / MaxCapacity bound the result; a scaling the limits prevent is a not-scaled
  activity with ``AlreadyAtMaxCapacity`` / ``AlreadyAtMinCapacity`` (NS, SA).

A local simplification: the datapoint period is configurable (the local cloud's
``SHIP_LOCAL_METRIC_PERIOD``, 60 s by default as in CloudWatch); the datapoint counts stay
AWS's, so the alarms take 3 and 15 periods.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

HIGH_DATAPOINTS = 3           # AlarmHigh: 3 of 3 datapoints above the target
LOW_DATAPOINTS = 15           # AlarmLow: 15 of 15 datapoints below LOW_FACTOR x target
LOW_FACTOR = 0.9
DEFAULT_COOLDOWN = 300.0      # API: the default of ScaleInCooldown/ScaleOutCooldown for ECS

ALREADY_AT_MAX = "AlreadyAtMaxCapacity"
ALREADY_AT_MIN = "AlreadyAtMinCapacity"
ALREADY_AT_DESIRED = "AlreadyAtDesiredCapacity"


@dataclass(frozen=True)
class Policy:
    name: str
    target: float
    datapoints: tuple[float | None, ...] = ()     # oldest first, one per period; None: no data
    scale_out_cooldown: float = DEFAULT_COOLDOWN
    scale_in_cooldown: float = DEFAULT_COOLDOWN
    disable_scale_in: bool = False
    alarm_high: str = "AlarmHigh"
    alarm_low: str = "AlarmLow"

    @property
    def latest(self) -> float | None:
        return self.datapoints[-1] if self.datapoints else None


@dataclass(frozen=True)
class Limits:
    min_capacity: int
    max_capacity: int
    scale_out_suspended: bool = False
    scale_in_suspended: bool = False


@dataclass(frozen=True)
class Memory:
    """What the scaler remembers about one scalable target between evaluations (wall clock)."""

    last_scale_out: float | None = None     # epoch seconds of the last scale-out
    scale_out_from: int | None = None       # the capacity before that scale-out
    last_scale_in: float | None = None


@dataclass(frozen=True)
class Decision:
    direction: str                 # "out" | "in"
    policy: str
    alarm: str
    metric: float
    capacity: int                  # the desired count asked for (before limits when not scaled)
    scaled: bool                   # False: a not-scaled activity (see ``not_scaled``)
    not_scaled: str | None = None
    memory: Memory = field(default_factory=Memory)

    @property
    def cause(self) -> str:
        # SA: "monitor alarm <alarm> in state ALARM triggered policy <policy>"
        return f"monitor alarm {self.alarm} in state ALARM triggered policy {self.policy}"


def alarm_high(p: Policy) -> bool:
    last = p.datapoints[-HIGH_DATAPOINTS:]
    return len(last) == HIGH_DATAPOINTS and all(v is not None and v > p.target for v in last)


def alarm_low(p: Policy) -> bool:
    last = p.datapoints[-LOW_DATAPOINTS:]
    return len(last) == LOW_DATAPOINTS and all(v is not None and v < LOW_FACTOR * p.target for v in last)


def proportional(capacity: int, metric: float, target: float) -> int:
    """ceil(capacity x metric / target), computed so that float noise does not add a task."""
    if target <= 0:
        return capacity
    return max(0, math.ceil(round(capacity * metric / target, 9)))


def _within(since: float | None, seconds: float, now: float) -> bool:
    return since is not None and now - since < seconds


def _scale_out(current: int, limits: Limits, firing: list[Policy], memory: Memory, now: float) -> Decision | None:
    best: tuple[int, Policy, bool] | None = None
    for p in firing:
        cooling = _within(memory.last_scale_out, p.scale_out_cooldown, now) and memory.scale_out_from is not None
        base = memory.scale_out_from if cooling and memory.scale_out_from is not None else current
        wanted = proportional(base, p.latest or 0.0, p.target)
        if best is None or wanted > best[0]:
            best = (wanted, p, cooling)
    assert best is not None
    wanted, p, cooling = best
    new = max(min(wanted, limits.max_capacity), limits.min_capacity)
    if new > current:
        base = memory.scale_out_from if cooling and memory.scale_out_from is not None else current
        return Decision("out", p.name, p.alarm_high, p.latest or 0.0, new, True,
                        memory=replace(memory, last_scale_out=now, scale_out_from=base))
    if cooling:
        return None               # the capacity the last scale-out added is still on its way
    reason = ALREADY_AT_MAX if current >= limits.max_capacity else ALREADY_AT_DESIRED
    return Decision("out", p.name, p.alarm_high, p.latest or 0.0, wanted, False, reason, memory)


def _scale_in(current: int, limits: Limits, policies: list[Policy], memory: Memory, now: float) -> Decision | None:
    best: tuple[int, Policy] | None = None
    for p in policies:
        wanted = proportional(current, p.latest or 0.0, p.target)
        if best is None or wanted > best[0]:
            best = (wanted, p)
    assert best is not None
    wanted, p = best
    if _within(memory.last_scale_in, p.scale_in_cooldown, now):
        return None
    new = max(min(wanted, limits.max_capacity), limits.min_capacity)
    if new < current:
        return Decision("in", p.name, p.alarm_low, p.latest or 0.0, new, True,
                        memory=replace(memory, last_scale_in=now))
    reason = ALREADY_AT_MIN if current <= limits.min_capacity else ALREADY_AT_DESIRED
    return Decision("in", p.name, p.alarm_low, p.latest or 0.0, wanted, False, reason, memory)


def decide(current: int, limits: Limits, policies: tuple[Policy, ...] | list[Policy], memory: Memory,
           now: float) -> Decision | None:
    """One evaluation of a scalable target's target tracking policies; None: nothing to do."""
    firing = [p for p in policies if alarm_high(p)]
    if firing:
        if limits.scale_out_suspended:
            return None
        return _scale_out(current, limits, firing, memory, now)
    may_scale_in = [p for p in policies if not p.disable_scale_in]
    if may_scale_in and all(alarm_low(p) for p in may_scale_in) and not limits.scale_in_suspended:
        return _scale_in(current, limits, may_scale_in, memory, now)
    return None
