"""The local cloud: an AWS emulator (moto, in-process) plus a data plane that
makes its ECS services and ALB target groups behave like Fargate + ALB.

Modules:

* ``server``      the ``serve`` process: moto's WSGI app, ``/_ship/*`` endpoints,
                  the data plane, signal handling.
* ``control``     start/stop/probe the ``serve`` process (used by the tool).
* ``motoadapter`` every touch of moto internals (patches + accessors).
* ``dataplane``   the reconcile loop: deployments, tasks, targets, listeners.
* ``runner``      how a task is run (process runner; container runners plug in).
* ``images``      image resolution against ECR and process rootfs materialisation.
* ``health``      ALB-style target health checks.
"""

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4566
SERVICE_NAME = "ship-localcloud"
