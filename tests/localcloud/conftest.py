"""Fixtures for the local cloud tests: a real ``serve`` process on a free port,
and tiny process images pushed through the ECR API."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import socket
import tarfile
import zipfile
from pathlib import Path

import pytest

from ship import oci, procfs
from ship.net import free_port

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"

DEMO_APP = r'''
import json, os, signal, sys, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = {version!r}
HEALTHY = {healthy!r}


def task_arn():
    uri = os.environ.get("ECS_CONTAINER_METADATA_URI_V4")
    if not uri:
        return None
    try:
        with urllib.request.urlopen(uri + "/task", timeout=2) as r:
            return json.load(r).get("TaskARN")
    except OSError:
        return None


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stdout.write("access %s\n" % (fmt % args))
        sys.stdout.flush()

    def do_GET(self):
        if self.path == "/health":
            code, body = (200, {{"ok": True}}) if HEALTHY else (500, {{"ok": False}})
        else:
            code, body = 200, {{"version": VERSION, "pid": os.getpid(), "task": TASK}}
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main():
    global TASK
    TASK = task_arn()
    port = int(os.environ.get("PORT", "8000"))
    srv = ThreadingHTTPServer(("127.0.0.1", port), H)
    srv.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *a: (print("demo got SIGTERM", flush=True), os._exit(0)))
    print("demo %s listening on %d task %s" % (VERSION, port, TASK), flush=True)
    srv.serve_forever()


TASK = None
if __name__ == "__main__":
    main()
'''


def _wheel(name: str, version: str, files: dict[str, bytes]) -> tuple[str, bytes]:
    """A minimal, valid pure-Python wheel."""
    dist = f"{name}-{version}.dist-info"
    files = dict(files)
    files[f"{dist}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    files[f"{dist}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: ship-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = io.StringIO()
    w = csv.writer(record, lineterminator="\n")
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        w.writerow([path, f"sha256={digest}", len(data)])
    w.writerow([f"{dist}/RECORD", "", ""])
    files[f"{dist}/RECORD"] = record.getvalue().encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files.items():
            z.writestr(path, data)
    return f"{name}-{version}-py3-none-any.whl", buf.getvalue()


def build_process_image(version: str, healthy: bool = True) -> tuple[bytes, bytes]:
    """(config bytes, layer bytes) of a process image running the demo app."""
    return process_image(DEMO_APP.format(version=version, healthy=healthy).encode(), version)


def process_image(code: bytes, version: str) -> tuple[bytes, bytes]:
    """(config bytes, layer bytes) of a process image running ``code`` (as ``python -m shipdemo``)."""
    wname, wdata = _wheel("shipdemo", "1.0.0",
                          {"shipdemo/__init__.py": b"", "shipdemo/__main__.py": code})
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w:gz") as tar:
        for name, data in ((f"wheels/{wname}", wdata), ("app/README", b"demo\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    config = oci.canonical_json({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["python", "-m", "shipdemo"], "Env": ["PYTHONUNBUFFERED=1", f"DEMO_VERSION={version}"],
                   "WorkingDir": "/app", "ExposedPorts": {"8000/tcp": {}}},
    })
    return config, layer.getvalue()


def _upload_blob(ecr, repo: str, data: bytes) -> str:
    upload = ecr.initiate_layer_upload(repositoryName=repo)
    uid, part = upload["uploadId"], upload.get("partSize") or len(data)
    first = 0
    while first < len(data) or first == 0:
        chunk = data[first:first + part]
        ecr.upload_layer_part(repositoryName=repo, uploadId=uid, partFirstByte=first,
                              partLastByte=first + len(chunk) - 1, layerPartBlob=chunk)
        first += len(chunk)
        if not chunk:
            break
    digest = oci.sha256_digest(data)
    ecr.complete_layer_upload(repositoryName=repo, uploadId=uid, layerDigests=[digest])
    return digest


def push_image(ecr, repo: str, tag: str, config: bytes, layer: bytes,
               config_media_type: str = oci.PROCESS_CONFIG_MEDIA_TYPE) -> str:
    """Push through the ECR API like the tool does; returns the image URI by digest."""
    cdesc = oci.Descriptor(config_media_type, _upload_blob(ecr, repo, config), len(config))
    ldesc = oci.Descriptor(oci.PROCESS_LAYER_MEDIA_TYPE, _upload_blob(ecr, repo, layer), len(layer))
    manifest = oci.build_manifest(cdesc, [ldesc])
    digest = oci.sha256_digest(manifest)
    ecr.put_image(repositoryName=repo, imageManifest=manifest.decode(), imageTag=tag,
                  imageManifestMediaType=oci.OCI_MANIFEST_MEDIA_TYPE, imageDigest=digest)
    uri = ecr.describe_repositories(repositoryNames=[repo])["repositories"][0]["repositoryUri"]
    return f"{uri}@{digest}"


def _pids_under(state_dir: Path) -> list[int]:
    """Processes whose cwd or executable lives in the state dir (task processes)."""
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cwd = os.readlink(p / "cwd")
        except OSError:
            continue
        if cwd.startswith(str(state_dir)):
            if procfs.alive(int(p.name)):
                out.append(int(p.name))
    return out


class Cloud:
    def __init__(self, endpoint: str, state_dir: Path, info: dict):
        self.endpoint = endpoint
        self.state_dir = state_dir
        self.info = info

    def client(self, name: str):
        import boto3

        return boto3.client(name, endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test")

    def listeners(self) -> list[dict]:
        import requests

        return requests.get(self.endpoint + "/_ship/listeners", timeout=5).json()


@pytest.fixture
def cloud(tmp_path, monkeypatch):
    """A local cloud of the test's own; it stops with this session however the session dies."""
    from helpers import wait_until  # here, not at the top: scripts import this module without tests/ on their path
    from ship.localcloud import control

    port = free_port()
    state = tmp_path / "state"
    info = control.up(state, port=port, timeout=60, exit_with=os.getpid())
    c = Cloud(f"http://127.0.0.1:{port}", state, info)
    try:
        yield c
    finally:
        listener_ports = []
        try:
            listener_ports = [x["local_port"] for x in c.listeners()]
        except Exception:
            pass
        assert control.down(state, timeout=60)
        wait_until(lambda: not _pids_under(state), 10, "no process left running under the state directory")
        assert control.probe(c.endpoint) is None
        for p in [port, *listener_ports]:
            with socket.socket() as s:
                assert s.connect_ex(("127.0.0.1", p)) != 0, f"port {p} still open"
