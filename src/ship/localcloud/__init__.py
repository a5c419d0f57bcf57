"""The local cloud: an AWS emulator (moto, in-process) plus a data plane that
makes its ECS services and ALB target groups behave like Fargate + ALB.

Packages and modules, one concern each:

* ``server``    the ``serve`` process: moto's WSGI app, ``/_ship/*`` endpoints,
                the data planes, signal handling.
* ``control``   start/stop/probe the ``serve`` process (used by the tool).
* ``emulator``  every touch of moto's internals, one module per AWS service.
* ``fargate``   the ECS data plane: deployments, tasks, awslogs, task metadata.
* ``alb``       the ELB data plane: listeners and target health checks.
* ``runtime``   how a task runs (processes or containers) and image resolution.
"""

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4566
SERVICE_NAME = "ship-localcloud"
