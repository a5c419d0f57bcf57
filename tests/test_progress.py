"""Readable output: Terraform's progress lines read into timings, the critical chain of
the provider's waits, the timeline and the status line; plain lines without a terminal."""

import io

import pytest

from ship.progress import (Phase, Progress, TerraformEvents, TerraformWatch, render_timeline, resource_type,
                           short_address, status_line, waits_text)


@pytest.mark.parametrize("address, kind, short", [
    ("module.loadbalancer.aws_lb.this", "aws_lb", "aws_lb.this"),
    ("module.network.aws_subnet.public[0]", "aws_subnet", "aws_subnet.public[0]"),
    ('module.security.aws_security_group_rule.alb_ingress["80-0.0.0.0/0"]', "aws_security_group_rule",
     'aws_security_group_rule.alb_ingress["80-0.0.0.0/0"]'),
    ("aws_vpc.main", "aws_vpc", "aws_vpc.main"),
    ("module.a.module.b.aws_ecs_cluster.this", "aws_ecs_cluster", "aws_ecs_cluster.this"),
    ("module.iam.data.aws_partition.this", "aws_partition", "data.aws_partition.this"),
])
def test_resource_addresses(address, kind, short):
    assert resource_type(address) == kind
    assert short_address(address) == short


# One cold apply as Terraform 1.11 prints it (-no-color), with the time each line arrived.
APPLY = [
    (0.0, "module.network.data.aws_region.this: Reading..."),
    (0.1, "module.network.data.aws_region.this: Read complete after 0s [id=us-east-1]"),
    (1.0, "Plan: 30 to add, 0 to change, 0 to destroy."),
    (1.5, "module.ecs.aws_ecs_cluster.this: Creating..."),
    (1.5, "module.network.aws_vpc.this: Creating..."),
    (1.6, "module.iam.aws_iam_role.task: Creating..."),
    (1.8, "module.iam.aws_iam_role.task: Creation complete after 0s [id=hello-local-task]"),
    (11.5, "module.network.aws_vpc.this: Still creating... [10s elapsed]"),
    (11.6, "module.ecs.aws_ecs_cluster.this: Creation complete after 10s [id=arn:...]"),
    (11.7, "module.network.aws_vpc.this: Creation complete after 10s [id=vpc-1]"),
    (11.8, "module.network.aws_subnet.public[0]: Creating..."),
    (12.0, "module.network.aws_subnet.public[0]: Creation complete after 0s [id=subnet-1]"),
    (11.9, "module.loadbalancer.aws_lb_target_group.this: Creating..."),
    (12.1, "module.loadbalancer.aws_lb_target_group.this: Creation complete after 0s [id=arn:tg]"),
    (12.3, "module.loadbalancer.aws_lb.this: Creating..."),
    (72.5, "module.loadbalancer.aws_lb.this: Creation complete after 1m0s [id=arn:lb]"),
    (72.6, "module.loadbalancer.aws_lb_listener.http[0]: Creating..."),
    (72.7, "module.loadbalancer.aws_lb_listener.http[0]: Creation complete after 0s [id=arn:l]"),
    (72.8, "module.ecs.aws_ecs_service.this: Creating..."),
    (73.0, "module.ecs.aws_ecs_service.this: Creation complete after 0s [id=arn:svc]"),
    (73.1, "Apply complete! Resources: 30 added, 0 changed, 0 destroyed."),
]


def _events(lines=APPLY) -> TerraformEvents:
    events = TerraformEvents()
    for t, line in lines:
        events.feed(line, t)
    return events


def test_resource_timings_are_measured_from_the_lines():
    events = _events()
    lb = events.resources["module.loadbalancer.aws_lb.this"]
    assert lb.action == "create" and lb.seconds == pytest.approx(60.2)
    assert "module.network.data.aws_region.this" not in events.resources   # data sources are reads
    assert events.verdict == "Apply complete! Resources: 30 added, 0 changed, 0 destroyed."
    assert events.in_flight() == []


def test_the_critical_chain_runs_through_the_vpc_and_the_load_balancer():
    events = _events()
    chain = [short_address(r.address) for r in events.critical_chain()]
    # read from timings, not from the graph: the target group finished last before the ALB started
    assert chain == ["aws_vpc.this", "aws_subnet.public[0]", "aws_lb_target_group.this", "aws_lb.this",
                     "aws_lb_listener.http[0]", "aws_ecs_service.this"]
    waits = events.provider_waits()
    # the ECS cluster's 10 s ran beside the VPC's: not on the critical path
    assert [short_address(r.address) for r in waits] == ["aws_vpc.this", "aws_lb.this"]
    assert waits_text(waits) == "aws_vpc.this 10.2s + aws_lb.this 60.2s = 70.4s"


def test_an_apply_with_no_changes_has_no_floor():
    events = _events([(0.0, "No changes. Your infrastructure matches the configuration.")])
    assert events.verdict.startswith("No changes.") and events.provider_waits() == []
    assert waits_text([]) == "none"


def test_the_first_error_is_kept():
    events = _events([(0.0, "│ Error: creating ELBv2 Load Balancer: ValidationError: bad"), (0.1, "│ Error: two")])
    assert events.error == "creating ELBv2 Load Balancer: ValidationError: bad"


def test_timeline_places_phases_on_one_axis():
    phases = [Phase("state", 0.0, 2.0, "init"), Phase("infrastructure", 2.0, 80.0, "applied"),
              Phase("rollout", 80.0, 90.0, "steady", failed=True)]
    rows = render_timeline(phases, 90.0, width=18)
    assert rows[0].split() == ["phase", "from", "to", "took"]
    assert rows[1].startswith("  state") and "2.0s" in rows[1] and rows[1].endswith("init")
    bar = rows[2].split("s  ", 1)[1]
    assert bar.startswith("#") and len(bar.split("  ")[0].strip()) == 16     # 78 of 90 s on 18 columns
    assert "xx" in rows[3]                                                  # a failed phase is drawn apart


def test_status_line_names_what_each_running_phase_waits_on():
    infra = Phase("infrastructure", 0.0, waiting="creating aws_lb.this", bar=(30.0, 60.0))
    image = Phase("image", 0.0, 5.0, "done")
    rollout = Phase("rollout", 1.0)
    text = status_line([image, infra, rollout], now=31.0)
    assert "infrastructure: creating aws_lb.this [########........] 30/~60s" in text
    assert "rollout (30s)" in text and "image" not in text
    assert status_line([image], now=31.0) == ""


def test_plain_output_is_lines_with_elapsed_time_and_no_redraw():
    out, now = io.StringIO(), [0.0]
    with Progress(out, tty=False, clock=lambda: now[0]) as progress:
        phase = progress.start("image", "building")
        now[0] = 2.5
        progress.line("built it")
        progress.finish(phase, "abc")
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    assert text.splitlines() == ["[   2.5s] built it", "[   2.5s] image done in 2.5s: abc"]
    assert progress.report()[0] == {"phase": "image", "start": 0.0, "end": 2.5, "seconds": 2.5, "result": "abc",
                                    "failed": False}


def test_plain_output_says_what_it_still_waits_on_now_and_then():
    out, now = io.StringIO(), [0.0]
    progress = Progress(out, tty=False, clock=lambda: now[0])
    phase = progress.start("infrastructure")
    for t in (1.0, 10.0, 16.0, 20.0, 31.5):
        now[0] = t
        progress.wait(phase, "creating aws_lb.this", bar=(t, 60.0))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("[  16.0s] still infrastructure: creating aws_lb.this")


def test_a_terminal_gets_a_status_line_redrawn_in_place():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    with Progress(out, clock=lambda: 0.0) as progress:
        phase = progress.start("infrastructure", "creating aws_lb.this")
        progress.wait(phase, "creating aws_lb.this", bar=(1.0, 60.0))
        progress.line("a line")
        progress.finish(phase, "ok")
    # each permanent line erases the status line first, and the status is drawn again below it
    assert out.getvalue() == ("[   0.0s] a line\n"
                              "\r\x1b[K    0.0s  infrastructure: creating aws_lb.this [................] 1/~60s"
                              "\r\x1b[K[   0.0s] infrastructure done in 0.0s: ok\n")


def test_terraform_watch_prints_the_provider_waits_only():
    out, now = io.StringIO(), [0.0]
    progress = Progress(out, tty=False, clock=lambda: now[0])
    phase = progress.start("infrastructure")
    watch = TerraformWatch(progress, phase)
    for t, line in APPLY:
        now[0] = t
        watch(line)
    lines = [ln.split("] ", 1)[1] for ln in out.getvalue().splitlines() if "still" not in ln]
    assert lines == [
        "creating aws_ecs_cluster.this: the AWS provider waits about 10s here, whatever the API answers",
        "creating aws_vpc.this: the AWS provider waits about 10s here, whatever the API answers",
        "aws_ecs_cluster.this created after 10.1s",
        "aws_vpc.this created after 10.2s",
        "creating aws_lb.this: the AWS provider waits about 60s here, whatever the API answers",
        "aws_lb.this created after 60.2s",
    ]


def test_terraform_watch_tells_what_is_in_flight():
    now = [0.0]
    progress = Progress(io.StringIO(), tty=False, clock=lambda: now[0])
    watch = TerraformWatch(progress, progress.start("infrastructure"))
    assert watch.waiting() == ("terraform: planning", None)
    watch("module.loadbalancer.aws_lb.this: Creating...")
    watch("module.security.aws_security_group_rule.x: Creating...")
    now[0] = 42.0
    assert watch.waiting() == ("creating aws_lb.this (+1 more)", (42.0, 60.0))


def test_terraform_watch_measures_terraforms_own_time_before_its_first_change():
    """From the phase's start to the first resource that begins to change; data sources read
    during the plan do not count as changes."""
    now = [5.0]
    progress = Progress(io.StringIO(), tty=False, clock=lambda: now[0])
    watch = TerraformWatch(progress, progress.start("infrastructure"))
    assert watch.before_first_change() is None
    now[0] = 7.5
    watch("module.network.data.aws_region.this: Reading...")
    watch("module.network.data.aws_region.this: Read complete after 0s [id=us-east-1]")
    assert watch.before_first_change() is None
    now[0] = 8.8
    watch("module.network.aws_vpc.this: Creating...")
    now[0] = 9.0
    watch("module.ecr.aws_ecr_repository.this: Creating...")
    assert watch.before_first_change() == pytest.approx(3.8)


def test_verbose_watch_prints_every_line():
    out = io.StringIO()
    progress = Progress(out, tty=False, clock=lambda: 0.0)
    watch = TerraformWatch(progress, progress.start("infrastructure"), verbose=True)
    watch("Terraform used the selected providers to generate the following execution")
    watch("")
    assert out.getvalue().splitlines() == [
        "[   0.0s] Terraform used the selected providers to generate the following execution"]


def test_lines_stamped_by_the_code_below_get_one_stamp():
    out = io.StringIO()
    progress = Progress(out, tty=False, clock=lambda: 3.0)
    progress.say("[  12.5s] new hello-local:3: 2/2 running")
    progress.say("[ 0.1s] x")
    progress.say("plain [1.0s] inside")
    assert out.getvalue().splitlines() == ["[   0.0s] new hello-local:3: 2/2 running", "[   0.0s] x",
                                           "[   0.0s] plain [1.0s] inside"]
