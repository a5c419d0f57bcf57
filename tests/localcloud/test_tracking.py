"""Target tracking's rules, one table row per documented behaviour (pure function, milliseconds).

Sources (cited per row):
TT https://docs.aws.amazon.com/autoscaling/application/userguide/target-tracking-scaling-policy-overview.html
ECS https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-autoscaling-targettracking.html
API https://docs.aws.amazon.com/autoscaling/application/APIReference/API_TargetTrackingScalingPolicyConfiguration.html
PSP https://docs.aws.amazon.com/autoscaling/application/APIReference/API_PutScalingPolicy.html
NS https://docs.aws.amazon.com/autoscaling/application/APIReference/API_NotScaledReason.html
SA https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-scaling-activities.html
"""

from __future__ import annotations

import pytest

from ship.localcloud.fargate import tracking as T

NOW = 100_000.0
LIMITS = T.Limits(min_capacity=1, max_capacity=10)


def high(value: float, n: int = 3) -> tuple:
    return (50.0,) * 12 + (value,) * n


def low(value: float, n: int = 15) -> tuple:
    return (value,) * n


def pol(name="cpu", target=50.0, points=(), **kw) -> T.Policy:
    return T.Policy(name, target, tuple(points), alarm_high=f"{name}-AlarmHigh", alarm_low=f"{name}-AlarmLow", **kw)


def outcome(d: T.Decision | None):
    if d is None:
        return None
    return (d.direction, d.capacity if d.scaled else None, d.not_scaled, d.policy)


ROWS = [
    # -- the alarms
    pytest.param(2, [pol(points=high(100.0))], LIMITS, T.Memory(), ("out", 4, None, "cpu"),
                 id="TT: 3 datapoints above the target fire the scale-out alarm; capacity x metric / target"),
    pytest.param(2, [pol(points=high(100.0, n=2))], LIMITS, T.Memory(), None,
                 id="TT: 2 datapoints above the target are not enough (AlarmHigh needs 3 of 3)"),
    pytest.param(2, [pol(points=(100.0, None, 100.0))], LIMITS, T.Memory(), None,
                 id="ECS: a missing datapoint (insufficient data) does not scale out"),
    pytest.param(2, [pol(points=high(50.0))], LIMITS, T.Memory(), None,
                 id="TT: a metric at the target is not above it: nothing to do"),
    pytest.param(4, [pol(points=low(20.0))], LIMITS, T.Memory(), ("in", 2, None, "cpu"),
                 id="TT: 15 datapoints below 90% of the target fire the scale-in alarm"),
    pytest.param(4, [pol(points=low(20.0, n=14))], LIMITS, T.Memory(), None,
                 id="TT: 14 low datapoints are not enough (AlarmLow needs 15 of 15)"),
    pytest.param(4, [pol(points=low(46.0))], LIMITS, T.Memory(), None,
                 id="TT: below the target but not 10% below it does not scale in"),
    pytest.param(4, [pol(points=low(20.0)[:-1] + (None,))], LIMITS, T.Memory(), None,
                 id="ECS: insufficient data is not read as low utilization: no scale-in"),
    # -- rounding
    pytest.param(3, [pol(points=high(51.0))], LIMITS, T.Memory(), ("out", 4, None, "cpu"),
                 id="TT: scale-out rounds up (ceil(3 x 51 / 50) = 4)"),
    pytest.param(3, [pol(points=low(30.0))], LIMITS, T.Memory(), ("in", 2, None, "cpu"),
                 id="TT: scale-in rounds up too, removing less (ceil(3 x 30 / 50) = 2)"),
    pytest.param(3, [pol(points=low(40.0))], LIMITS, T.Memory(), ("in", None, T.ALREADY_AT_DESIRED, "cpu"),
                 id="TT: a scale-in that rounds back to the current capacity does not scale"),
    # -- limits
    pytest.param(8, [pol(points=high(100.0))], LIMITS, T.Memory(), ("out", 10, None, "cpu"),
                 id="API: a scale-out stops at MaxCapacity"),
    pytest.param(10, [pol(points=high(100.0))], LIMITS, T.Memory(), ("out", None, T.ALREADY_AT_MAX, "cpu"),
                 id="NS: at MaxCapacity the scale-out is a not-scaled activity, AlreadyAtMaxCapacity"),
    pytest.param(3, [pol(points=low(0.0))], LIMITS, T.Memory(), ("in", 1, None, "cpu"),
                 id="API: a scale-in stops at MinCapacity"),
    pytest.param(1, [pol(points=low(0.0))], LIMITS, T.Memory(), ("in", None, T.ALREADY_AT_MIN, "cpu"),
                 id="NS: at MinCapacity the scale-in is a not-scaled activity, AlreadyAtMinCapacity"),
    pytest.param(12, [pol(points=low(30.0))], LIMITS, T.Memory(), ("in", 8, None, "cpu"),
                 id="API: above MaxCapacity a scale-in still goes proportionally, within the limits"),
    # -- several policies
    pytest.param(2, [pol("cpu", points=high(100.0)), pol("mem", points=low(10.0))], LIMITS, T.Memory(),
                 ("out", 4, None, "cpu"),
                 id="TT: any policy ready to scale out scales out, whatever the others say"),
    pytest.param(2, [pol("cpu", points=high(100.0)), pol("mem", points=high(150.0))], LIMITS, T.Memory(),
                 ("out", 6, None, "mem"),
                 id="PSP: of two policies scaling out, the one giving the largest capacity wins"),
    pytest.param(4, [pol("cpu", points=low(10.0)), pol("mem", points=low(46.0))], LIMITS, T.Memory(), None,
                 id="TT: scale-in only when every policy is ready to scale in"),
    pytest.param(4, [pol("cpu", points=low(10.0)), pol("mem", points=low(30.0))], LIMITS, T.Memory(),
                 ("in", 3, None, "mem"),
                 id="PSP: of two policies scaling in, the one keeping the largest capacity wins"),
    pytest.param(4, [pol("cpu", points=low(10.0)), pol("mem", points=low(46.0), disable_scale_in=True)],
                 LIMITS, T.Memory(), ("in", 1, None, "cpu"),
                 id="TT: a policy with scale-in disabled does not hold back the others' scale-in"),
    # -- DisableScaleIn and suspension
    pytest.param(4, [pol(points=low(0.0), disable_scale_in=True)], LIMITS, T.Memory(), None,
                 id="API: DisableScaleIn: the policy never removes capacity"),
    pytest.param(2, [pol(points=high(100.0), disable_scale_in=True)], LIMITS, T.Memory(), ("out", 4, None, "cpu"),
                 id="API: DisableScaleIn still scales out"),
    pytest.param(2, [pol(points=high(100.0))], T.Limits(1, 10, scale_out_suspended=True), T.Memory(), None,
                 id="SuspendedState: DynamicScalingOutSuspended stops scale-out"),
    pytest.param(4, [pol(points=low(0.0))], T.Limits(1, 10, scale_in_suspended=True), T.Memory(), None,
                 id="SuspendedState: DynamicScalingInSuspended stops scale-in"),
    # -- cooldowns
    pytest.param(4, [pol(points=high(100.0), scale_out_cooldown=60)], LIMITS,
                 T.Memory(last_scale_out=NOW - 30, scale_out_from=2), None,
                 id="API: within the scale-out cooldown the capacity just added counts: 2 x 100/50 = 4, no more"),
    pytest.param(4, [pol(points=high(150.0), scale_out_cooldown=60)], LIMITS,
                 T.Memory(last_scale_out=NOW - 30, scale_out_from=2), ("out", 6, None, "cpu"),
                 id="API: within the scale-out cooldown a larger scale-out still happens (from the same base)"),
    pytest.param(4, [pol(points=high(100.0), scale_out_cooldown=60)], LIMITS,
                 T.Memory(last_scale_out=NOW - 61, scale_out_from=2), ("out", 8, None, "cpu"),
                 id="API: after the scale-out cooldown the current capacity is the base again"),
    pytest.param(4, [pol(points=low(0.0), scale_in_cooldown=300)], LIMITS, T.Memory(last_scale_in=NOW - 100), None,
                 id="API: no scale-in within the scale-in cooldown"),
    pytest.param(4, [pol(points=low(0.0), scale_in_cooldown=300)], LIMITS, T.Memory(last_scale_in=NOW - 301),
                 ("in", 1, None, "cpu"),
                 id="API: scale-in again once the scale-in cooldown has passed"),
    pytest.param(2, [pol(points=high(100.0), scale_in_cooldown=300)], LIMITS, T.Memory(last_scale_in=NOW - 10),
                 ("out", 4, None, "cpu"),
                 id="API: a scale-out during the scale-in cooldown happens at once"),
    pytest.param(2, [pol(points=low(0.0), scale_out_cooldown=300)], LIMITS, T.Memory(last_scale_out=NOW - 10),
                 ("in", 1, None, "cpu"),
                 id="API: the scale-out cooldown does not hold back a scale-in"),
    # -- requests per target (same rule, another unit)
    pytest.param(1, [pol("requests", 60.0, points=high(600.0))], T.Limits(1, 3), T.Memory(),
                 ("out", 3, None, "requests"),
                 id="ECS: ALBRequestCountPerTarget 600/min on 1 task with a target of 60 asks 10, max 3"),
]


@pytest.mark.parametrize("current, policies, limits, memory, expected", ROWS)
def test_target_tracking(current, policies, limits, memory, expected):
    assert outcome(T.decide(current, limits, policies, memory, NOW)) == expected


def test_a_scale_out_remembers_its_base_and_time():
    d = T.decide(2, LIMITS, [pol(points=high(100.0))], T.Memory(last_scale_in=5.0), NOW)
    assert d is not None and d.memory == T.Memory(last_scale_out=NOW, scale_out_from=2, last_scale_in=5.0)
    # a second, larger scale-out within the cooldown keeps the first base
    d2 = T.decide(4, LIMITS, [pol(points=high(150.0))], d.memory, NOW + 10)
    assert d2 is not None and d2.capacity == 6 and d2.memory.scale_out_from == 2


def test_a_scale_in_remembers_its_time_and_a_not_scaled_one_changes_nothing():
    d = T.decide(4, LIMITS, [pol(points=low(0.0))], T.Memory(), NOW)
    assert d is not None and d.memory.last_scale_in == NOW
    same = T.Memory(last_scale_out=1.0, scale_out_from=1)
    n = T.decide(10, LIMITS, [pol(points=high(100.0))], same, NOW)
    assert n is not None and not n.scaled and n.memory == same


def test_the_cause_names_the_alarm_and_the_policy_as_scaling_activities_do():
    d = T.decide(2, LIMITS, [pol("cpu75", points=high(100.0))], T.Memory(), NOW)
    assert d is not None
    assert d.cause == "monitor alarm cpu75-AlarmHigh in state ALARM triggered policy cpu75"
    assert d.metric == 100.0


@pytest.mark.parametrize("capacity, metric, target, expected", [
    (3, 50.0, 50.0, 3), (3, 50.000000001, 50.0, 3), (3, 50.1, 50.0, 4), (0, 100.0, 50.0, 0), (5, 0.0, 50.0, 0),
    (10, 33.3, 33.3, 10),
])
def test_proportional_capacity(capacity, metric, target, expected):
    assert T.proportional(capacity, metric, target) == expected


@pytest.mark.parametrize("raw, expected", [
    (None, 60.0), ("", 60.0), ("1", 1.0), ("7.5", 7.5), ("3600", 3600.0),
    ("0", 60.0), ("0.5", 60.0), ("3601", 60.0), ("-5", 60.0), ("soon", 60.0),
])
def test_the_datapoint_period_is_cloudwatchs_minute_unless_set_within_bounds(raw, expected):
    from ship.localcloud.fargate.autoscaler import PERIOD_ENV, period_from_env

    assert period_from_env({} if raw is None else {PERIOD_ENV: raw}) == expected
