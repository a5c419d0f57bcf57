"""Requests/s and p50/p99 latency of gunicorn serving the app's / on 127.0.0.1.

Load generator: wrk (Debian's `wrk`). Writes benchmarks/results/gunicorn.json.
This is a measurement, not a test: figures depend on the machine and its load.

    python benchmarks/gunicorn_throughput.py [--seconds 10] [--connections 16] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from ship.net import free_port  # noqa: E402
RESULTS = ROOT / "benchmarks" / "results"


def to_ms(value: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", value)
    number, unit = float(m.group(1)), m.group(2)
    return number / 1000 if unit == "us" else number * 1000 if unit == "s" else number


def wrk(url: str, seconds: int, connections: int, threads: int = 1) -> dict:
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    return {"requests_per_s": rps, "p50_ms": to_ms(lat["50"]), "p99_ms": to_ms(lat["99"]),
            "non_2xx": int(errors.group(1)) if errors else 0, "socket_errors": sock.group(1) if sock else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (WEB_CONCURRENCY)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk not found: install it (apt-get install wrk)", file=sys.stderr)
        return 2
    port = free_port()
    env = dict(os.environ, PORT=str(port), WEB_CONCURRENCY=str(args.workers), APP_VERSION="bench",
               GUNICORN_LOG_LEVEL="warning")
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    # Access and request logs off the terminal, as they would be shipped elsewhere.
    proc = subprocess.Popen([gunicorn, "--config", "gunicorn.conf.py", "--access-logfile", "/dev/null",
                             "hello.wsgi:app"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(200):
            try:
                urllib.request.urlopen(url + "health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.05)
        wrk(url, 2, args.connections)  # warm-up
        result = wrk(url, args.seconds, args.connections)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    report = {
        "benchmark": "gunicorn GET / on 127.0.0.1",
        "load_generator": "wrk -t1",
        "connections": args.connections,
        "seconds": args.seconds,
        "gunicorn_workers": args.workers,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        **result,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "gunicorn.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
