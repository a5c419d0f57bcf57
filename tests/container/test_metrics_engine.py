"""Service Auto Scaling's measurements of container tasks, from the real engine's stats."""

from __future__ import annotations

import time

import pytest
from container_support import LABEL_KEY, SESSION

from ship.localcloud.fargate import metrics

pytestmark = pytest.mark.container

BUSY = ("import time\nblock = bytearray(64 * 1024 * 1024)\nfor i in range(0, len(block), 4096): block[i] = 1\n"
        "end = time.time() + 120\nwhile time.time() < end: pass\n")


def test_containers_are_measured_from_the_engines_stats(engine, runtime_image):
    busy, idle = f"busy-{SESSION}", f"idle-{SESSION}"
    for name, code in ((busy, BUSY), (idle, "import time; time.sleep(120)")):
        engine.run(runtime_image, ["-c", code], detach=True, name=name, entrypoint="python",
                   labels={LABEL_KEY: SESSION})
    try:
        names = {"t-busy": busy, "t-idle": idle}
        first = metrics.engine_usage(engine, names, time.monotonic())
        assert set(first) == {"t-busy", "t-idle"}
        deadline = time.monotonic() + 30
        while True:
            time.sleep(1)
            second = metrics.engine_usage(engine, names, time.monotonic())
            used = metrics.cpu_units_used(first["t-busy"], second["t-busy"])
            if (used and used > 0 and (second["t-busy"].memory_bytes or 0) >= 64 * metrics.MIB) \
                    or time.monotonic() > deadline:
                break
        assert used and used > 0
        assert (second["t-busy"].memory_bytes or 0) >= 64 * metrics.MIB
        assert (second["t-idle"].memory_bytes or 0) < 64 * metrics.MIB
        # a container that is gone does not hide the others
        engine.remove_container(idle)
        assert set(metrics.engine_usage(engine, names, time.monotonic())) == {"t-busy"}
    finally:
        for name in (busy, idle):
            engine.remove_container(name)
