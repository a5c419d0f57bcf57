"""docker-compose.yml: the app service builds, starts and answers /health."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest
from container_support import SESSION, wait_for
from ship.net import free_port

pytestmark = pytest.mark.container


def test_compose_app_service(engine, context, build_args):
    project = f"shipctest{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = dict(os.environ, APP_PORT=str(port), APP_VERSION=f"compose-{SESSION}",
               BASE_IMAGE=build_args.get("BASE_IMAGE", "python:3.11-slim"))

    def compose(*args, check=True):
        cmd = engine.compose_argv("--project-name", project, "--file", str(context / "docker-compose.yml"), *args)
        proc = subprocess.run(cmd, cwd=context, env=env, capture_output=True, text=True, timeout=900)
        assert not check or proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        return proc

    try:
        compose("build", "app")
        compose("up", "-d", "app")
        status, body = wait_for(f"http://127.0.0.1:{port}/health")
        assert (status, body) == (200, {"status": "ok"})
        _, index = wait_for(f"http://127.0.0.1:{port}/")
        assert index["version"] == f"compose-{SESSION}"
    finally:
        compose("down", check=False)
        engine.remove_containers(f"com.docker.compose.project={project}")
        engine.call("network", "rm", f"{project}_default", check=False)
        engine.rm_image(f"hello-ship:compose-{SESSION}", force=True)
