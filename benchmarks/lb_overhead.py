"""What the local load balancer costs, against HAProxy as the reference load balancer.

Starts two replicas of the real app (``hello.wsgi:app``) under the project's
``gunicorn.conf.py`` (one sync worker each by default), HAProxy from Debian in front
of both, and the local ALB listener (``ship.localcloud.alb``) in front of both once
per HTTP parser, then runs ``wrk`` in alternating rounds:

* ``direct``        wrk -> one replica
* ``haproxy``       wrk -> HAProxy -> two replicas (round robin)
* ``listener``      wrk -> listener (httptools) -> two replicas (round robin)
* ``listener_h11``  wrk -> listener (h11) -> two replicas, when h11 is installed
* ``listener_one``  wrk -> listener (httptools) -> one replica (its own overhead)

It writes ``benchmarks/results/lb_overhead.json`` and prints medians over the rounds
and the ratios the goal is stated in (issue 9): listener throughput / HAProxy's
(goal >= 0.95) and listener p50 / HAProxy's (goal <= 1.10), for each parser.

Usage:  python benchmarks/lb_overhead.py [--workers 1] [--worker-class sync|gthread] [-c 16] [-d 10]
        [-r 3] [--parsers httptools,h11] [--haproxy-threads 1] [--no-listener-one] [-o FILE]

Needs ``wrk`` and ``haproxy`` (``.ci/bench-setup.sh`` installs both from Debian).
HAProxy runs with ``nbthread 1`` by default, like the listener's one event loop, and
does the same header work (X-Forwarded-For/-Proto/-Port). This is a measurement, not
a test: on a shared 2-core machine wrk, the balancer and the replicas compete for CPU;
each run records who used the cores ("other" = everything else on the machine), so
that a noisy run can be spotted. Compare ratios from one run, not runs across machines.
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
sys.path.insert(0, str(ROOT / "src"))

from ship import procfs  # noqa: E402
from ship.net import free_port  # noqa: E402
DEFAULT_OUTPUT = HERE / "results" / "lb_overhead.json"
GOAL_RPS = 0.95  # listener throughput / HAProxy's, at least
GOAL_P50 = 1.10  # listener p50 / HAProxy's, at most


def wait_http_ok(port: int, path: str = "/health", timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET %s HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n" % path.encode())
                data = s.recv(64)
                if data.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")):
                    return
                last = data[:40]
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"nothing answered 200 on port {port} within {timeout:.0f}s (last: {last!r})")


class Process:
    """A child process in its own process group, with its output in a log file."""

    def __init__(self, cmd: list, log_path: Path, env: dict | None = None, cwd: Path | None = None):
        self.cmd = cmd
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
                                     env=env, cwd=cwd)

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


def start_replica(workers: int, worker_class: str, threads: int, log_dir: Path) -> tuple:
    """The app under the project's gunicorn.conf.py, bound to loopback on a free port."""
    port = free_port()
    env = dict(os.environ, PORT=str(port), WEB_CONCURRENCY=str(workers), APP_VERSION="bench",
               GUNICORN_LOG_LEVEL="warning")
    cmd = [sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"),
           "--bind", f"127.0.0.1:{port}", "--access-logfile", "/dev/null", "--worker-class", worker_class]
    if worker_class == "gthread":
        cmd += ["--threads", str(threads), "--keep-alive", "75"]
    cmd.append("hello.wsgi:app")
    return port, Process(cmd, log_dir / f"replica-{port}.log", env=env, cwd=ROOT)


HAPROXY_CONFIG = """\
global
    maxconn 4096
    nbthread {threads}
defaults
    mode http
    timeout connect 10s
    timeout client 60s
    timeout server 60s
    option forwardfor
frontend listener
    bind 127.0.0.1:{port}
    http-request set-header X-Forwarded-Proto http
    http-request set-header X-Forwarded-Port 80
    default_backend replicas
backend replicas
    balance roundrobin
{servers}
"""


def start_haproxy(ports: list, threads: int, log_dir: Path) -> tuple:
    port = free_port()
    servers = "\n".join(f"    server r{i} 127.0.0.1:{p}" for i, p in enumerate(ports))
    cfg = log_dir / "haproxy.cfg"
    cfg.write_text(HAPROXY_CONFIG.format(threads=threads, port=port, servers=servers))
    check = subprocess.run(["haproxy", "-c", "-q", "-f", str(cfg)], capture_output=True, text=True)
    if check.returncode:
        raise RuntimeError(f"haproxy rejects its configuration: {check.stderr or check.stdout}")
    return port, Process(["haproxy", "-db", "-f", str(cfg)], log_dir / "haproxy.log")


# ---------------------------------------------------------------------------
# CPU accounting: who used the cores during a run (to spot a noisy machine)
# ---------------------------------------------------------------------------

def _busy_seconds() -> float:
    try:
        v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    except OSError:
        return 0.0
    return (sum(v[:8]) - v[3] - v[4]) / procfs.CLK_TCK  # minus idle and iowait


def _group_cpu_seconds(pgid: int) -> float:
    total = 0
    for pid in os.listdir("/proc"):
        fields = procfs.fields(pid) if pid.isdigit() else None
        if fields is not None and int(fields[procfs.PGRP]) == pgid:
            total += procfs.cpu_ticks(fields)
    return total / procfs.CLK_TCK


def cpu_snapshot(replicas: list, haproxy) -> dict:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "busy": _busy_seconds(),
        "wrk": ru.ru_utime + ru.ru_stime,  # wrk is the only child that is waited for
        "listener": time.process_time(),  # this process: the listeners' threads
        "haproxy": _group_cpu_seconds(haproxy.proc.pid),
        "replicas": sum(_group_cpu_seconds(r.proc.pid) for r in replicas),
    }


def cpu_delta(before: dict, after: dict, seconds: float) -> dict:
    d = {k: (after[k] - before[k]) / seconds for k in before}
    d["other"] = max(0.0, d["busy"] - d["wrk"] - d["listener"] - d["haproxy"] - d["replicas"])
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


def run_wrk(url: str, connections: int, duration: int) -> dict:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url]
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
        "p50_ms": _ms(lat["50"]), "p75_ms": _ms(lat["75"]), "p90_ms": _ms(lat["90"]), "p99_ms": _ms(lat["99"]),
        "requests": int(total.group(1)) if total else None,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": dict(zip(("connect", "read", "write", "timeout"), map(int, sockerr.groups())))
        if sockerr else {},
    }


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=1, help="gunicorn workers per replica (default 1)")
    ap.add_argument("--worker-class", default="sync", choices=("sync", "gthread"),
                    help="sync closes every connection (the project's config), gthread keeps them alive")
    ap.add_argument("--threads", type=int, default=1, help="threads per gthread worker (default 1)")
    ap.add_argument("--connections", "-c", type=int, default=16, help="wrk connections (default 16)")
    ap.add_argument("--duration", "-d", type=int, default=10, help="seconds per wrk run (default 10)")
    ap.add_argument("--rounds", "-r", type=int, default=3, help="alternating rounds (default 3)")
    ap.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per scenario (default 2)")
    ap.add_argument("--parsers", default="httptools,h11", help="listener parsers to measure (default both)")
    ap.add_argument("--haproxy-threads", type=int, default=1, help="HAProxy nbthread (default 1)")
    ap.add_argument("--no-listener-one", action="store_true", help="skip the listener -> one replica scenario")
    ap.add_argument("--output", "-o", type=Path, default=None,
                    help="default results/lb_overhead.json (sync) or results/lb_overhead_<worker class>.json")
    args = ap.parse_args(argv)
    if args.output is None:
        args.output = DEFAULT_OUTPUT if args.worker_class == "sync" else \
            DEFAULT_OUTPUT.with_name(f"lb_overhead_{args.worker_class}.json")
    return args


def available_parsers(wanted: str) -> list:
    out = []
    for name in [p.strip() for p in wanted.split(",") if p.strip()]:
        try:
            __import__(name)
        except ImportError:
            print(f"lb_overhead: {name} is not installed: its listener is not measured", file=sys.stderr)
            continue
        out.append(name)
    return out


def measure(args, urls: dict, replicas: list, haproxy) -> dict:
    scenarios = list(urls)
    runs: dict = {s: [] for s in scenarios}
    for s in scenarios:
        if args.warmup > 0:
            run_wrk(urls[s], args.connections, args.warmup)
    for rnd in range(args.rounds):
        order = scenarios if rnd % 2 == 0 else list(reversed(scenarios))
        for s in order:
            before = cpu_snapshot(replicas, haproxy)
            t0 = time.process_time()  # after the snapshot: its /proc scans are not the listener's
            res = run_wrk(urls[s], args.connections, args.duration)
            t1 = time.process_time()
            before["listener"], after = t0, cpu_snapshot(replicas, haproxy)
            after["listener"] = t1
            res["cpu"] = cpu_delta(before, after, args.duration)
            done = res["requests"] or 1
            balancer = "haproxy" if s == "haproxy" else "listener"
            res["balancer_cpu_us_per_req"] = round(res["cpu"][f"{balancer}_cores"] * args.duration / done * 1e6, 1)
            res["round"] = rnd + 1
            runs[s].append(res)
            cpu = res["cpu"]
            print(f"  round {rnd + 1} {s:<13} {res['rps']:8.1f} req/s  p50 {res['p50_ms']:6.2f} ms  "
                  f"p99 {res['p99_ms']:6.2f} ms  non-2xx {res['non_2xx']}  cores: wrk {cpu['wrk_cores']:.2f} "
                  f"lb {cpu[balancer + '_cores'] if s != 'direct' else 0:.2f} replicas {cpu['replicas_cores']:.2f} "
                  f"other {cpu['other_cores']:.2f}", flush=True)
    return runs


def summarize(runs: dict) -> tuple:
    summary = {}
    for s, rs in runs.items():
        summary[s] = {
            "rps": statistics.median(r["rps"] for r in rs),
            "p50_ms": statistics.median(r["p50_ms"] for r in rs),
            "p99_ms": statistics.median(r["p99_ms"] for r in rs),
            "other_load_cores": statistics.median(r["cpu"]["other_cores"] for r in rs),
            "balancer_cpu_us_per_req": statistics.median(r["balancer_cpu_us_per_req"] for r in rs),
        }
    ratios = {}
    h, d = summary["haproxy"], summary["direct"]
    ratios["haproxy_rps_over_direct"] = h["rps"] / d["rps"]
    ratios["haproxy_p50_over_direct"] = h["p50_ms"] / d["p50_ms"]
    goals = {}
    for s in summary:
        if s.startswith("listener") and s != "listener_one":
            ratios[f"{s}_rps_over_haproxy"] = summary[s]["rps"] / h["rps"]
            ratios[f"{s}_p50_over_haproxy"] = summary[s]["p50_ms"] / h["p50_ms"]
            ratios[f"{s}_rps_over_direct"] = summary[s]["rps"] / d["rps"]
            goals[s] = ratios[f"{s}_rps_over_haproxy"] >= GOAL_RPS and ratios[f"{s}_p50_over_haproxy"] <= GOAL_P50
    if "listener_one" in summary:
        ratios["listener_one_rps_over_direct"] = summary["listener_one"]["rps"] / d["rps"]
        ratios["listener_one_p50_over_direct"] = summary["listener_one"]["p50_ms"] / d["p50_ms"]
    return summary, ratios, goals


def main(argv=None) -> int:
    args = parse_args(argv)
    for tool, how in (("wrk", "wrk"), ("haproxy", "haproxy")):
        if shutil.which(tool) is None:
            print(f"lb_overhead: {tool} not found; install it with .ci/bench-setup.sh (apt-get install {how})",
                  file=sys.stderr)
            return 2
    sys.path.insert(0, str(ROOT / "src"))
    from ship.localcloud.alb.listener import Listener
    from ship.localcloud.alb.targets import Target

    parsers = available_parsers(args.parsers)
    if "httptools" not in parsers:
        print("lb_overhead: the listener needs httptools (pip install -e '.[dev]')", file=sys.stderr)
        return 2
    args.output.parent.mkdir(parents=True, exist_ok=True)
    log_dir = Path(tempfile.mkdtemp(prefix="lb_overhead-"))
    replicas, listeners, haproxy, failed = [], {}, None, True
    try:
        ports = []
        for _ in range(2):
            port, proc = start_replica(args.workers, args.worker_class, args.threads, log_dir)
            ports.append(port)
            replicas.append(proc)
        for p in ports:
            wait_http_ok(p)
        hport, haproxy = start_haproxy(ports, args.haproxy_threads, log_dir)
        wait_http_ok(hport)
        both = [Target("127.0.0.1", p, "healthy") for p in ports]
        urls = {"direct": f"http://127.0.0.1:{ports[0]}/", "haproxy": f"http://127.0.0.1:{hport}/"}
        for parser in parsers:
            name = "listener" if parser == "httptools" else f"listener_{parser}"
            listeners[name] = lst = Listener(parser=parser, name=name)
            lst.start()
            lst.set_targets(both)
            urls[name] = f"http://127.0.0.1:{lst.port}/"
        if not args.no_listener_one:
            listeners["listener_one"] = lst = Listener(name="listener_one")
            lst.start()
            lst.set_targets(both[:1])
            urls["listener_one"] = f"http://127.0.0.1:{lst.port}/"
        for u in urls.values():
            wait_http_ok(int(u.rsplit(":", 1)[1].strip("/")), "/")
        print(f"lb_overhead: nproc={os.cpu_count()} app replicas x2, {args.workers} {args.worker_class} worker(s) "
              f"each; wrk -t1 -c{args.connections} -d{args.duration}s; {args.rounds} rounds; "
              f"haproxy nbthread {args.haproxy_threads}; parsers {', '.join(parsers)}", flush=True)
        runs = measure(args, urls, replicas, haproxy)
        listener_stats = {name: lst.stats() for name, lst in listeners.items()}
        failed = False
    finally:
        for lst in listeners.values():
            lst.stop()
        for proc in ([haproxy] if haproxy else []) + replicas:
            proc.stop()
        if failed:
            print(f"lb_overhead: logs kept in {log_dir}", file=sys.stderr)
        else:
            shutil.rmtree(log_dir, ignore_errors=True)
    report(args, runs, listener_stats, parsers)
    return 0


def report(args, runs: dict, listener_stats: dict, parsers: list) -> None:
    summary, ratios, goals = summarize(runs)
    haproxy_version = subprocess.run(["haproxy", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    result = {
        "machine": {"nproc": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "config": {
            "app": "hello.wsgi:app under gunicorn.conf.py", "replicas": 2, "workers_per_replica": args.workers,
            "worker_class": args.worker_class, "wrk": f"wrk -t1 -c{args.connections} -d{args.duration}s --latency",
            "rounds": args.rounds, "warmup_s": args.warmup, "parsers": parsers, "haproxy": haproxy_version,
            "haproxy_nbthread": args.haproxy_threads,
        },
        "runs": runs,
        "summary_median": summary,
        "ratios": ratios,
        "goal": {"listener_rps_over_haproxy_min": GOAL_RPS, "listener_p50_over_haproxy_max": GOAL_P50, "met": goals},
        "listener_stats": listener_stats,
    }
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print("median over rounds:")
    for s, v in summary.items():
        print(f"  {s:<13} {v['rps']:8.1f} req/s  p50 {v['p50_ms']:6.2f} ms  p99 {v['p99_ms']:6.2f} ms  "
              f"balancer {v['balancer_cpu_us_per_req']:5.0f} us/req  (other processes: {v['other_load_cores']:.2f} "
              f"cores)")
    print(f"  haproxy/direct: throughput x{ratios['haproxy_rps_over_direct']:.2f}, "
          f"p50 x{ratios['haproxy_p50_over_direct']:.2f}")
    for s, met in goals.items():
        print(f"  {s}/haproxy: throughput x{ratios[f'{s}_rps_over_haproxy']:.2f} (goal >= {GOAL_RPS}), "
              f"p50 x{ratios[f'{s}_p50_over_haproxy']:.2f} (goal <= {GOAL_P50}) -> goal {'met' if met else 'MISSED'}"
              f"; vs direct x{ratios[f'{s}_rps_over_direct']:.2f}")
    print(f"  written to {args.output}")


if __name__ == "__main__":
    sys.exit(main())
