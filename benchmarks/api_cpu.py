"""The local cloud's CPU per AWS API call.

Starts a local cloud (``python -m ship.localcloud serve``) on a free port with a fresh state
directory, creates an ECS cluster and an S3 bucket, then makes ``--calls`` rounds of three
reads (ECS DescribeClusters, S3 ListObjectsV2, EC2 DescribeVpcs) with boto3 and reads the
server process's CPU time (/proc/<pid>/stat) before and after. Reports milliseconds of the
server's CPU per call.

``--against SRC``: also measures the local cloud of another source tree (``SRC`` is a ``src/``
directory, e.g. from ``git archive REV src | tar -x -C /tmp/old``), alternating the two in
``--rounds`` rounds, and reports the ratio of the medians: compare within one run, not across
runs or machines.

Usage:  python benchmarks/api_cpu.py [--calls 300] [--rounds 3] [--against SRC] [-o FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ship import procfs  # noqa: E402
from ship.localcloud import control  # noqa: E402
from ship.net import free_port  # noqa: E402


def _cpu(pid: int) -> float:
    seconds = procfs.cpu_seconds(pid)
    if seconds is None:
        raise SystemExit(f"the local cloud (pid {pid}) is gone")
    return seconds


def measure(src: Path, calls: int) -> float:
    """Milliseconds of the local cloud's CPU per call, for the tree whose src/ is ``src``."""
    import boto3

    state = Path(tempfile.mkdtemp(prefix="api-cpu-"))
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(src), SHIP_LOCAL_RUNTIME="process")
    server = subprocess.Popen([sys.executable, "-m", "ship.localcloud", "serve", "--port", str(port),
                               "--state-dir", str(state)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while control.probe(f"http://127.0.0.1:{port}") is None:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the local cloud of {src} did not start")
            time.sleep(0.05)
        kw = dict(endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1", aws_access_key_id="test",
                  aws_secret_access_key="test")
        ecs, s3, ec2 = boto3.client("ecs", **kw), boto3.client("s3", **kw), boto3.client("ec2", **kw)
        ecs.create_cluster(clusterName="bench")
        s3.create_bucket(Bucket="bench-bucket")
        for _ in range(5):      # the first call of each kind loads its models: not measured
            ecs.describe_clusters(clusters=["bench"])
            s3.list_objects_v2(Bucket="bench-bucket")
            ec2.describe_vpcs()
        before = _cpu(server.pid)
        for _ in range(calls):
            ecs.describe_clusters(clusters=["bench"])
            s3.list_objects_v2(Bucket="bench-bucket")
            ec2.describe_vpcs()
        return (_cpu(server.pid) - before) * 1000 / (3 * calls)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(state, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300, help="rounds of the three calls per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--against", type=Path, help="another tree's src/ directory, measured alternately")
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "benchmarks" / "results" / "api_cpu.json")
    args = parser.parse_args(argv)
    if args.against is not None and not (args.against / "ship" / "localcloud").is_dir():
        parser.error(f"--against {args.against}: not a src/ directory with ship/localcloud in it")
    trees = {"this": ROOT / "src", **({"against": args.against.resolve()} if args.against else {})}
    runs: dict[str, list[float]] = {name: [] for name in trees}
    for round_ in range(args.rounds):
        for name, src in trees.items():
            ms = measure(src, args.calls)
            runs[name].append(round(ms, 3))
            print(f"round {round_ + 1} {name}: {ms:.2f} ms of the local cloud's CPU per call", flush=True)
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "calls_per_run": 3 * args.calls,
        "against": str(args.against) if args.against else None,
        "ms_per_call": runs,
        "median_ms_per_call": {name: statistics.median(values) for name, values in runs.items()},
    }
    if args.against:
        result["ratio_this_to_against"] = round(result["median_ms_per_call"]["this"]
                                                / result["median_ms_per_call"]["against"], 3)
        print(f"this / against: {result['ratio_this_to_against']}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
