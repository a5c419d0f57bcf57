"""ship.capacity.wanted: the count the commands that apply Terraform give the service
(terraform/modules/ecs ignores desired_count after creation)."""

from __future__ import annotations

import pytest

from ship.capacity import wanted

OFF = {"autoscaling": False, "desired_count": 2, "autoscaling_min_capacity": 1, "autoscaling_max_capacity": 4}
ON = dict(OFF, autoscaling=True)


@pytest.mark.parametrize("settings, current, expected", [
    (OFF, 2, 2),            # as configured: nothing to do
    (OFF, 5, 2),            # off: environments.yaml's desired_count, whatever ran before
    (OFF, 0, 2),
    (ON, 3, 3),             # on: the scaler's count stands
    (ON, 2, 2),
    (ON, 0, 1),             # below a (new) minimum: raised to it
    (ON, 9, 4),             # above a (new) maximum: lowered to it
    (dict(ON, autoscaling_min_capacity=0), 0, 0),
])
def test_wanted(settings, current, expected):
    assert wanted(settings, current) == expected
