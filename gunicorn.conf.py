"""gunicorn settings, read from the environment (``gunicorn --config gunicorn.conf.py``).

ECS stops a task with SIGTERM and sends SIGKILL after the container's
stopTimeout (30 s by default), so graceful_timeout stays below it: gunicorn
finishes in-flight requests and exits before the KILL arrives.
"""

import ipaddress
import multiprocessing
import os


def _int(name, default, low, high):
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"gunicorn.conf.py: {name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise SystemExit(f"gunicorn.conf.py: {name}={raw!r} must be between {low} and {high}")
    return value


def _host(name, default):
    """The address to listen on: all interfaces in a container or on Fargate (the task's ENI),
    127.0.0.1 when the local cloud runs the app as a plain process (it sets HOST)."""
    raw = (os.environ.get(name) or "").strip() or default
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        raise SystemExit(f"gunicorn.conf.py: {name}={raw!r} is not an IP address") from None
    return f"[{address}]" if address.version == 6 else str(address)


port = _int("PORT", 5000, 1, 65535)
bind = [f"{_host('HOST', '0.0.0.0')}:{port}"]
# Fargate tasks are small (0.25-1 vCPU); two workers per core, at least two.
workers = _int("WEB_CONCURRENCY", max(2, min(2 * multiprocessing.cpu_count(), 8)), 1, 64)
worker_class = "sync"
# Load the app once in the master, then fork the workers: a task is serving (and passes its
# first health check) when one import of the app is done, not one per worker racing for a
# quarter of a vCPU, and every worker of a task reports the same instance.
preload_app = True
timeout = _int("GUNICORN_TIMEOUT", 30, 1, 600)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 20, 1, 29)
# The ALB keeps idle connections for 60 s; keep ours open a little less than
# that is what matters for async workers; sync workers close after each request.
keepalive = 5
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
access_log_format = (
    '{"logger":"gunicorn.access","remote":"%(h)s","method":"%(m)s","path":"%(U)s",'
    '"status":%(s)s,"bytes":"%(B)s","duration_us":%(D)s,"user_agent":"%(a)s"}'
)
# Behind an ALB, X-Forwarded-* come from the load balancer; the security group
# admits only the ALB, so trust the forwarded headers from any peer.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "*")
proxy_allow_ips = forwarded_allow_ips
# gunicorn 27 opens a control socket in the working directory; the image runs
# read-only for the app user, and nothing here uses the socket.
control_socket_disable = True
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
