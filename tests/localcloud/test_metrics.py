"""Measuring tasks for Service Auto Scaling (fargate/metrics.py): the pure arithmetic as tables,
then a real process tree read from /proc.

Definitions:
  ECS-CW  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/cloudwatch-metrics.html
          "(Total CPU units used by tasks in service) x 100 / (Total CPU units specified in task
          definition) x (number of tasks in service)", the same with MiB for memory
  ELB-CW  https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html
          RequestCountPerTarget: requests of the target group / healthy targets; statistic Sum per period
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from ship.localcloud.fargate import metrics as M

MIB = 1024 * 1024


@pytest.mark.parametrize("prev, cur, expected", [
    (M.Usage(0.0, cpu_seconds=10.0), M.Usage(10.0, cpu_seconds=15.0), 512.0),     # half a CPU = 512 units
    (M.Usage(0.0, cpu_seconds=10.0), M.Usage(10.0, cpu_seconds=30.0), 2048.0),    # two busy CPUs
    (M.Usage(0.0, cpu_seconds=10.0), M.Usage(10.0, cpu_seconds=9.0), 0.0),        # a child lost: never negative
    (None, M.Usage(10.0, cpu_seconds=15.0), None),                                # one sample is not a rate
    (M.Usage(10.0, cpu_seconds=1.0), M.Usage(10.0, cpu_seconds=2.0), None),       # no time between samples
    (None, M.Usage(10.0, cpu_rate=0.25), 256.0),                                  # the engine's own rate
])
def test_cpu_units_used(prev, cur, expected):
    assert M.cpu_units_used(prev, cur) == expected


@pytest.mark.parametrize("tasks, expected", [
    pytest.param([(128.0, 256.0)], 50.0, id="ECS-CW: one task using 128 of its 256 units is at 50%"),
    pytest.param([(256.0, 256.0), (0.0, 256.0)], 50.0, id="ECS-CW: the service's average over its tasks"),
    pytest.param([(512.0, 256.0)], 200.0, id="ECS-CW: a task above its reservation reports above 100%"),
    pytest.param([(None, 256.0), (64.0, 256.0)], 25.0, id="a task without a rate yet is left out"),
    pytest.param([(None, 256.0)], None, id="no task measured: insufficient data"),
    pytest.param([], None, id="no task: insufficient data"),
])
def test_service_cpu_utilization(tasks, expected):
    assert M.service_cpu_utilization(tasks) == expected


@pytest.mark.parametrize("tasks, expected", [
    pytest.param([(256 * MIB, 512.0)], 50.0, id="ECS-CW: 256 MiB of a 512 MiB task"),
    pytest.param([(512 * MIB, 512.0), (0, 512.0)], 50.0, id="ECS-CW: averaged over the service's tasks"),
    pytest.param([(None, 512.0)], None, id="not measured: insufficient data"),
])
def test_service_memory_utilization(tasks, expected):
    assert M.service_memory_utilization(tasks) == expected


@pytest.mark.parametrize("prev, cur, healthy, expected", [
    pytest.param((0.0, 100), (60.0, 700), 2, 300.0, id="ELB-CW: 600 requests in a minute on 2 healthy targets"),
    pytest.param((0.0, 100), (5.0, 150), 1, 600.0, id="a 5 s period is scaled to a per-minute value"),
    pytest.param((0.0, 100), (60.0, 100), 3, 0.0, id="no requests: 0, a datapoint all the same"),
    pytest.param((0.0, 100), (60.0, 700), 0, None, id="no healthy target: nothing to divide by"),
    pytest.param(None, (60.0, 700), 2, None, id="the first sample starts the count"),
    pytest.param((0.0, 700), (60.0, 100), 1, 0.0, id="a count that went back (listener replaced) is not negative"),
])
def test_requests_per_target(prev, cur, healthy, expected):
    assert M.requests_per_target(prev, cur, healthy) == expected


@pytest.mark.parametrize("label, expected", [
    ("app/my-lb/50dc6c495c0c9188/targetgroup/my-tg/6d0ecf831eec9f09", "targetgroup/my-tg/6d0ecf831eec9f09"),
    ("targetgroup/my-tg/6d0ecf831eec9f09", None),
    ("", None),
    (None, None),
])
def test_target_group_of_a_resource_label(label, expected):
    assert M.target_group_suffix(label) == expected


@pytest.mark.parametrize("line, expected", [
    ('{"Name":"ship-t1","CPUNano":2500000000,"MemUsage":55713792}',
     ("ship-t1", M.Usage(7.0, cpu_seconds=2.5, memory_bytes=55713792))),
    ('{"Name":"/ship-t2","CPUPerc":"150.00%","MemUsage":"12.5MiB / 1.9GiB"}',
     ("ship-t2", M.Usage(7.0, cpu_rate=1.5, memory_bytes=int(12.5 * MIB)))),
    ('{"Name":"ship-t3","CPUPerc":"--","MemUsage":"-- / --"}', ("ship-t3", M.Usage(7.0))),
    ("not json", None),
])
def test_engine_stats_lines(line, expected):
    assert M.parse_stats_line(line, 7.0) == expected


@pytest.mark.parametrize("text, expected", [("0B", 0), ("4.17MB", 4170000), ("1.5GiB", 1610612736), ("12 kB", 12000),
                                            ("lots", None)])
def test_sizes(text, expected):
    assert M.parse_size(text) == expected


# -- a real process tree ----------------------------------------------------------------------------------------

BUSY_TREE = r"""
import os, sys, time
child = os.fork()
if child == 0:                      # a worker, as gunicorn forks them: burns CPU, holds 64 MiB
    block = bytearray(64 * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1
    end = time.time() + 60
    while time.time() < end:
        pass
    os._exit(0)
print("ready", flush=True)
time.sleep(60)
"""


def test_a_task_is_measured_over_its_whole_process_tree():
    proc = subprocess.Popen([sys.executable, "-c", BUSY_TREE], stdout=subprocess.PIPE, start_new_session=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        first = M.process_usage({"busy": proc.pid, "idle": other.pid, "gone": 2 ** 22 + 7}, time.monotonic())
        assert set(first) == {"busy", "idle"}                   # a session with no process has no sample
        deadline = time.monotonic() + 30
        while True:     # the worker's CPU shows once it has run a while (a busy machine may delay it)
            time.sleep(0.5)
            second = M.process_usage({"busy": proc.pid, "idle": other.pid}, time.monotonic())
            busy = M.cpu_units_used(first["busy"], second["busy"])
            if busy and busy > 0 or time.monotonic() > deadline:
                break
        assert busy and busy > 0, "the forked worker's CPU time counts for the task"
        assert second["busy"].memory_bytes >= 64 * MIB          # the worker's memory too (Pss)
        assert second["idle"].memory_bytes < 64 * MIB
        assert (second["idle"].cpu_seconds or 0) - (first["idle"].cpu_seconds or 0) < second["busy"].cpu_seconds - \
            first["busy"].cpu_seconds
    finally:
        for p in (proc, other):
            try:
                os.killpg(p.pid, 9)
            except ProcessLookupError:
                pass
            p.wait()
