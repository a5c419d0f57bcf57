"""The ECS data plane, one concern per module:

* ``scheduler``  the ECS service scheduler as a pure function (snapshot -> decisions);
* ``services``   builds a service's snapshot from the emulator and applies the decisions;
* ``dataplane``  ``DataPlane``: the reconcile loop, RunTask adoption, restored tasks;
* ``lifecycle``  one task's life on its own thread, every failure ending STOPPED;
* ``health``     container health checks (the task definition's ``healthCheck``);
* ``awslogs``    the awslogs driver: a task's output to CloudWatch Logs;
* ``metadata``   the task metadata endpoint v4 payload;
* ``ports``      host ports for tasks.
"""
