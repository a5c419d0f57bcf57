"""What the local load balancer costs: wrk against one replica, then through the proxy.

Starts two gunicorn replicas of a minimal Flask app (defined below, so the
benchmark does not depend on the real app), a ``ListenerProxy`` in front of
both, and runs ``wrk`` in alternating rounds:

* ``direct``      wrk -> one replica
* ``proxy``       wrk -> ListenerProxy -> two healthy replicas (round robin)
* ``proxy_one``   wrk -> ListenerProxy -> one replica (the proxy's own overhead;
                  skip with ``--no-proxy-one``)

It writes ``benchmarks/results/lb_overhead.json`` and prints a summary with the
ratios the goal is stated in: proxy rps / direct rps (goal >= 0.85) and
proxy p50 / direct p50 (goal <= 1.15). Medians over the rounds are used.

Usage:  .venv/bin/python benchmarks/lb_overhead.py [--workers 1] [--connections 16]
        [--duration 10] [--rounds 3] [--worker-class sync|gthread] [--algorithm round_robin]

Scenarios of the replicas (``--worker-class``):

* ``sync`` (default, the comparable baseline): gunicorn's sync worker closes every
  connection, so wrk and the proxy open a new TCP connection per request;
* ``gthread``: keep-alive replicas (``--keep-alive 75``, longer than the proxy's
  30 s upstream pool timeout, as AWS advises for targets behind an ALB), which is
  the realistic production case: the proxy reuses pooled target connections.
  Results go to ``lb_overhead_gthread.json`` unless ``--output`` says otherwise.

``--algorithm least_outstanding_requests`` runs the proxy with that target group
algorithm instead of ALB's default round robin.
This is a benchmark, not a test: it takes about rounds x scenarios x duration seconds.
Each run also records who used the CPU (wrk, proxy, replicas, and "other" =
everything else on the machine) so that runs on a busy machine can be spotted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_OUTPUT = HERE / "results" / "lb_overhead.json"


def create_app():
    """The replica's app: one small JSON endpoint, as cheap as Flask gets."""
    from flask import Flask, jsonify

    app = Flask("lb_overhead_replica")

    @app.get("/")
    def index():
        return jsonify(message="hello", pid=os.getpid())

    return app


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http_ok(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                data = s.recv(64)
                if data.startswith(b"HTTP/1.1 200") or data.startswith(b"HTTP/1.0 200"):
                    return
                last = data[:40]
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"replica on port {port} did not answer 200 within {timeout:.0f}s (last: {last!r})")


class Replica:
    def __init__(self, workers: int, worker_class: str, log_dir: Path, threads: int = 1):
        self.port = free_port()
        self.log_path = log_dir / f"replica-{self.port}.log"
        self._log = open(self.log_path, "wb")
        cmd = [
            sys.executable, "-m", "gunicorn",
            "-w", str(workers), "-k", worker_class,
            "-b", f"127.0.0.1:{self.port}",
            "--pythonpath", str(HERE),
            "--log-level", "warning",
        ]
        if worker_class == "gthread":
            cmd += ["--threads", str(threads), "--keep-alive", "75"]
        cmd.append("lb_overhead:create_app()")
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()


# ---------------------------------------------------------------------------
# CPU accounting: who used the cores during a run (to spot a noisy machine)
# ---------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _busy_seconds() -> float:
    """CPU-seconds all cores spent not idle, from /proc/stat (0 where unavailable)."""
    try:
        v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    except OSError:
        return 0.0
    return (sum(v[:8]) - v[3] - v[4]) / _TICK  # minus idle and iowait


def _group_cpu_seconds(pgid: int) -> float:
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / _TICK


def cpu_snapshot(replicas) -> dict:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "busy": _busy_seconds(),
        "wrk": ru.ru_utime + ru.ru_stime,  # wrk is the only child that is waited for
        "proxy": time.process_time(),  # this process: the proxy's thread
        "replicas": sum(_group_cpu_seconds(r.proc.pid) for r in replicas),
    }


def cpu_delta(before: dict, after: dict, seconds: float) -> dict:
    d = {k: (after[k] - before[k]) / seconds for k in before}
    d["other"] = max(0.0, d["busy"] - d["wrk"] - d["proxy"] - d["replicas"])
    return {f"{k}_cores": round(v, 2) for k, v in d.items()}


# ---------------------------------------------------------------------------
# wrk
# ---------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def run_wrk(url: str, connections: int, duration: int, threads: int = 1) -> dict:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
    text = out.stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    lat = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", text, re.M))
    total = re.search(r"(\d+) requests in", text)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sockerr = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if not rps or "50" not in lat or "99" not in lat:
        raise RuntimeError(f"could not parse wrk output:\n{text}")
    return {
        "rps": float(rps.group(1)),
        "p50_ms": _ms(lat["50"]),
        "p75_ms": _ms(lat["75"]),
        "p90_ms": _ms(lat["90"]),
        "p99_ms": _ms(lat["99"]),
        "requests": int(total.group(1)) if total else None,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": dict(zip(("connect", "read", "write", "timeout"), map(int, sockerr.groups())))
        if sockerr else {},
    }


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=1, help="gunicorn workers per replica (default 1)")
    ap.add_argument("--worker-class", default="sync", choices=("sync", "gthread"),
                    help="gunicorn worker class: sync closes every connection, gthread keeps them alive (default sync)")
    ap.add_argument("--threads", type=int, default=1, help="threads per gthread worker (default 1)")
    ap.add_argument("--algorithm", default="round_robin",
                    help="the proxy's load balancing algorithm (default round_robin)")
    ap.add_argument("--connections", "-c", type=int, default=16, help="wrk connections (default 16)")
    ap.add_argument("--duration", "-d", type=int, default=10, help="seconds per wrk run (default 10)")
    ap.add_argument("--rounds", "-r", type=int, default=3, help="alternating rounds (default 3)")
    ap.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per scenario (default 2)")
    ap.add_argument("--no-proxy-one", action="store_true", help="skip the proxy -> one replica scenario")
    ap.add_argument("--output", "-o", type=Path, default=None,
                    help="default results/lb_overhead.json (sync) or results/lb_overhead_<worker class>.json")
    args = ap.parse_args(argv)
    if args.output is None:
        args.output = DEFAULT_OUTPUT if args.worker_class == "sync" else \
            DEFAULT_OUTPUT.with_name(f"lb_overhead_{args.worker_class}.json")

    if shutil.which("wrk") is None:
        print("lb_overhead: wrk not found; install wrk: apt-get install wrk", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT / "src"))
    from ship.localcloud.alb.proxy import ListenerProxy, Target

    try:
        import uvloop  # noqa: F401
        has_uvloop = True
    except ImportError:
        has_uvloop = False

    args.output.parent.mkdir(parents=True, exist_ok=True)
    replicas: list[Replica] = []
    proxy = None
    log_dir = Path(tempfile.mkdtemp(prefix="lb_overhead-"))
    failed = True
    scenarios = ["direct", "proxy"] + ([] if args.no_proxy_one else ["proxy_one"])
    runs: dict[str, list] = {s: [] for s in scenarios}
    try:
        replicas = [Replica(args.workers, args.worker_class, log_dir, args.threads) for _ in range(2)]
        for r in replicas:
            wait_http_ok(r.port)
        a, b = replicas
        proxy = ListenerProxy(host="127.0.0.1", port=0, listener_port=80, protocol="HTTP", algorithm=args.algorithm)
        proxy.start()
        both = [Target("127.0.0.1", a.port, "healthy"), Target("127.0.0.1", b.port, "healthy")]
        only_a = [Target("127.0.0.1", a.port, "healthy"), Target("127.0.0.1", b.port, "unused")]
        proxy.set_targets(both)
        wait_http_ok(proxy.port)

        def url(scenario: str) -> str:
            if scenario == "direct":
                return f"http://127.0.0.1:{a.port}/"
            proxy.set_targets(both if scenario == "proxy" else only_a)
            return f"http://127.0.0.1:{proxy.port}/"

        if args.warmup > 0:
            for s in scenarios:
                run_wrk(url(s), args.connections, args.warmup)

        print(f"lb_overhead: nproc={os.cpu_count()} workers/replica={args.workers} ({args.worker_class}) "
              f"wrk -t1 -c{args.connections} -d{args.duration}s, {args.rounds} rounds, "
              f"proxy {args.algorithm}, uvloop {'yes' if has_uvloop else 'no'}", flush=True)
        for rnd in range(args.rounds):
            order = scenarios if rnd % 2 == 0 else list(reversed(scenarios))
            for s in order:
                u = url(s)
                before = cpu_snapshot(replicas)
                res = run_wrk(u, args.connections, args.duration)
                res["cpu"] = cpu_delta(before, cpu_snapshot(replicas), args.duration)
                # CPU per request (user + system), from the cores used over the run.
                done = res["requests"] or 1
                res["proxy_cpu_us_per_req"] = round(res["cpu"]["proxy_cores"] * args.duration / done * 1e6, 1)
                res["replicas_cpu_us_per_req"] = round(res["cpu"]["replicas_cores"] * args.duration / done * 1e6, 1)
                res["round"] = rnd + 1
                runs[s].append(res)
                cpu = res["cpu"]
                print(f"  round {rnd + 1} {s:<9} {res['rps']:9.1f} req/s  p50 {res['p50_ms']:7.2f} ms  "
                      f"p99 {res['p99_ms']:7.2f} ms  non-2xx {res['non_2xx']}  "
                      f"cores: wrk {cpu['wrk_cores']:.2f} proxy {cpu['proxy_cores']:.2f} "
                      f"replicas {cpu['replicas_cores']:.2f} other {cpu['other_cores']:.2f}"
                      + (f"  proxy {res['proxy_cpu_us_per_req']:.0f} us/req" if s != "direct" else ""), flush=True)
        proxy_stats = proxy.stats()
        failed = False
    finally:
        if proxy is not None:
            proxy.stop()
        for r in replicas:
            r.stop()
        if failed:
            print(f"lb_overhead: replica logs kept in {log_dir}", file=sys.stderr)
        else:
            shutil.rmtree(log_dir, ignore_errors=True)

    summary = {}
    for s, rs in runs.items():
        summary[s] = {
            "rps": statistics.median(r["rps"] for r in rs),
            "p50_ms": statistics.median(r["p50_ms"] for r in rs),
            "p99_ms": statistics.median(r["p99_ms"] for r in rs),
            "other_load_cores": statistics.median(r["cpu"]["other_cores"] for r in rs),
            "proxy_cpu_us_per_req": statistics.median(r["proxy_cpu_us_per_req"] for r in rs),
            "replicas_cpu_us_per_req": statistics.median(r["replicas_cpu_us_per_req"] for r in rs),
        }
    d = summary["direct"]
    ratios = {
        "proxy_rps_over_direct": summary["proxy"]["rps"] / d["rps"],
        "proxy_p50_over_direct": summary["proxy"]["p50_ms"] / d["p50_ms"],
        "proxy_p99_over_direct": summary["proxy"]["p99_ms"] / d["p99_ms"],
    }
    if "proxy_one" in summary:
        ratios["proxy_one_rps_over_direct"] = summary["proxy_one"]["rps"] / d["rps"]
        ratios["proxy_one_p50_over_direct"] = summary["proxy_one"]["p50_ms"] / d["p50_ms"]
    goal_met = ratios["proxy_rps_over_direct"] >= 0.85 and ratios["proxy_p50_over_direct"] <= 1.15
    result = {
        "machine": {
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "uvloop": has_uvloop,
        },
        "config": {
            "replicas": 2,
            "workers_per_replica": args.workers,
            "worker_class": args.worker_class,
            "threads_per_worker": args.threads if args.worker_class == "gthread" else None,
            "algorithm": args.algorithm,
            "wrk": f"wrk -t1 -c{args.connections} -d{args.duration}s --latency",
            "rounds": args.rounds,
            "warmup_s": args.warmup,
            "direct": "wrk -> one replica",
            "proxy": "wrk -> ListenerProxy -> two healthy replicas",
            "proxy_one": "wrk -> ListenerProxy -> one replica",
        },
        "runs": runs,
        "summary_median": summary,
        "ratios": ratios,
        "goal": {"proxy_rps_over_direct_min": 0.85, "proxy_p50_over_direct_max": 1.15, "met": goal_met},
        "proxy_stats": proxy_stats,
    }
    args.output.write_text(json.dumps(result, indent=2) + "\n")

    print("median over rounds:")
    for s, v in summary.items():
        print(f"  {s:<9} {v['rps']:9.1f} req/s  p50 {v['p50_ms']:7.2f} ms  p99 {v['p99_ms']:7.2f} ms  "
              f"(other processes used {v['other_load_cores']:.2f} cores)"
              + (f"  proxy {v['proxy_cpu_us_per_req']:.0f} us/req" if s != "direct" else ""))
    print(f"  proxy/direct: throughput x{ratios['proxy_rps_over_direct']:.2f} (goal >= 0.85), "
          f"p50 x{ratios['proxy_p50_over_direct']:.2f} (goal <= 1.15)  -> goal {'met' if goal_met else 'MISSED'}")
    if "proxy_one_rps_over_direct" in ratios:
        print(f"  proxy_one/direct: throughput x{ratios['proxy_one_rps_over_direct']:.2f}, "
              f"p50 x{ratios['proxy_one_p50_over_direct']:.2f} (proxy overhead on a single replica)")
    print(f"  written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
