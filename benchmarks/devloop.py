"""The developer's loop, measured (figures, not pass/fail).

On a private copy of the working tree, a private local cloud (own state directory, free
port), with the project's own commands:

1. cold ``inv deploy --env=local``: total time, its phases, and the AWS provider's fixed
   waits on the critical path measured in the same run (the floor); the ratio; and the
   same with Terraform's own time before its first change (init, each apply's plan);
2. warm restart: ``inv local.down`` + ``inv local.up`` until the URL answers, then the
   next ``inv deploy --env=local`` (a no-op);
3. an edit served: one line of ``src/hello/views.py`` changed, ``inv deploy --env=local``
   under steady traffic: seconds from the command to the last response of the old
   version, failed requests, and the command's own time; in both runtimes (process, then
   container when an engine answers);
4. ``inv dev``: the same edit saved while the loop watches, to its verdict line.

Writes benchmarks/results/devloop.json. Usage:
``python benchmarks/devloop.py [--edits 3] [--runtimes process,container] [--keep]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ship.net import free_port  # noqa: E402
INV = str(Path(sys.executable).parent / "inv")
RESULTS = ROOT / "benchmarks" / "results" / "devloop.json"
VIEWS = "src/hello/views.py"


class Stack:
    def __init__(self, base: Path):
        self.repo, self.state = base / "repo", base / "state"
        self.port = int(os.environ.get("SHIP_LOCAL_PORT") or free_port())     # a port of your own, or any free one
        self.log = base / "inv.log"
        self.url = ""
        self.env = dict(os.environ, SHIP_STATE_DIR=str(self.state), SHIP_LOCAL_PORT=str(self.port),
                        SHIP_PROJECT_DIR=str(self.repo), PYTHONPATH=str(self.repo / "src"),
                        AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1",
                        SHIP_LOCAL_RUNTIME="process")
        for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
            self.env.pop(key, None)
        from ship.images import build_cache
        self.build_cache_before = build_cache()

    def copy_tree(self) -> None:
        self.repo.mkdir(parents=True)
        listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                                capture_output=True, check=True).stdout.decode().split("\0")
        for name in filter(None, listed):
            if (ROOT / name).is_file():
                (self.repo / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, self.repo / name)
        for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                     ["-c", "user.email=b@example.invalid", "-c", "user.name=bench", "commit", "-qm", "v1"]):
            subprocess.run(["git", *args], cwd=self.repo, check=True, capture_output=True)

    def inv(self, *args: str, check: bool = True) -> tuple[float, subprocess.CompletedProcess]:
        started = time.monotonic()
        result = subprocess.run([INV, *args], cwd=self.repo, env=self.env, capture_output=True, text=True,
                                timeout=1800)
        seconds = time.monotonic() - started
        with open(self.log, "a") as fh:
            fh.write(f"\n$ inv {' '.join(args)}  ({seconds:.1f}s, exit {result.returncode})\n")
            fh.write(result.stdout + result.stderr)
        if check and result.returncode != 0:
            raise SystemExit(f"inv {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
        return seconds, result

    def remove_images(self) -> None:
        """The container images the stack's deploys built (its commits', edits included), and the
        build cache their builds left (what was there before the benchmark stays)."""
        from ship import git
        from ship.images import remove_build_cache, remove_engine_images

        removed = remove_engine_images("hello", git.all_commits(self.repo))
        cache = remove_build_cache(self.build_cache_before)
        if removed or cache:
            print(f"removed {removed} container images the stack built and {cache} of their build cache")

    def get(self, timeout: float = 5) -> dict | None:
        try:
            with urllib.request.urlopen(self.url + "/", timeout=timeout) as resp:
                return json.loads(resp.read())
        except (OSError, ValueError, urllib.error.URLError):
            return None

    def record(self) -> dict:
        return json.loads((self.state / "logs" / "deploy-local.json").read_text())


class Load(threading.Thread):
    """Steady requests through the load balancer: (time, version or None) for each."""

    def __init__(self, stack: Stack):
        super().__init__(daemon=True)
        self.stack, self.stop, self.seen = stack, threading.Event(), []

    def run(self) -> None:
        while not self.stop.is_set():
            body = self.stack.get(timeout=10)
            self.seen.append((time.monotonic(), body.get("version") if body else None))
            time.sleep(0.02)


def edit(stack: Stack, n: int) -> None:
    path = stack.repo / VIEWS
    text = path.read_text()
    new = re.sub(r'jsonify\(status="ok"[^)]*\)', f'jsonify(status="ok", edit={n})', text)
    assert new != text, "the edit changed nothing"
    path.write_text(new)


def cold(stack: Stack) -> dict:
    seconds, result = stack.inv("deploy", "--env=local")
    stack.url = result.stdout.strip().splitlines()[-1]
    rec = stack.record()
    print(f"\ncold `inv deploy --env=local`: {seconds:.1f}s (summary says {rec['seconds']:.1f}s)")
    print("\n".join(line for line in result.stdout.splitlines()
                    if line.startswith("  ") and ("phase" in line or "s  " in line or "floor" in line)
                    and "arn:" not in line))
    floor = rec["floor_seconds"]
    ratio = seconds / floor if floor else None
    waits = ", ".join("%s %.1fs" % (w["resource"], w["seconds"]) for w in rec["floor"])
    print(f"floor {floor:.1f}s ({waits}); ratio {ratio:.2f}x" if floor else "no floor measured")
    own = rec.get("terraform_own_seconds") or 0.0
    with_own = seconds / (floor + own) if floor else None
    if floor and own:
        steps = ", ".join("%s %.1fs" % (s["step"], s["seconds"]) for s in rec["terraform_own"])
        print(f"Terraform's own time before its first change {own:.1f}s ({steps}); "
              f"floor with it {floor + own:.1f}s, ratio {with_own:.2f}x")
    return {"seconds": round(seconds, 1), "floor_seconds": floor, "ratio": round(ratio, 3) if ratio else None,
            "floor": rec["floor"], "terraform_own_seconds": own, "terraform_own": rec.get("terraform_own", []),
            "ratio_with_terraform_own": round(with_own, 3) if with_own else None, "phases": rec["phases"]}


def warm_restart(stack: Stack) -> dict:
    stack.inv("local.down")
    started = time.monotonic()
    attempts = 1
    while stack.inv("local.up", check=attempts == 3)[1].returncode != 0:
        attempts += 1          # a loaded machine can outlast local.up's 30 s start timeout: counted in the time
    up_done = time.monotonic() - started
    while stack.get(timeout=2) is None:
        time.sleep(0.1)
    answered = time.monotonic() - started
    noop, result = stack.inv("deploy", "--env=local")
    terraform_noop = "0 added, 0 changed, 0 destroyed" in result.stdout or "Terraform skipped" in result.stdout
    changed = not terraform_noop or "not rebuilding" not in result.stdout
    print(f"\nwarm restart: local.up {up_done:.1f}s, URL answers {answered:.1f}s after `inv local.up`; "
          f"next `inv deploy` {noop:.1f}s{' (NOT a no-op)' if changed else ' (no-op)'}")
    return {"local_up_seconds": round(up_done, 1), "local_up_attempts": attempts, "url_seconds": round(answered, 1),
            "noop_deploy_seconds": round(noop, 1), "noop": not changed}


def edit_to_serving(stack: Stack, runtime: str, edits: int) -> dict:
    stack.env["SHIP_LOCAL_RUNTIME"] = runtime
    if runtime == "container":
        stack.inv("deploy", "--env=local")          # the container image of the same tree, once
    runs = []
    for n in range(edits):
        edit(stack, int(time.time()) * 10 + n)
        old = (stack.get() or {}).get("version")
        load = Load(stack)
        load.start()
        time.sleep(0.5)
        started = time.monotonic()
        seconds, result = stack.inv("deploy", "--env=local")
        time.sleep(2)
        load.stop.set()
        load.join()
        last_old = max((t for t, v in load.seen if v == old), default=started) - started
        failed = sum(1 for _, v in load.seen if v is None)
        runs.append({"last_old_response": round(last_old, 1), "command": round(seconds, 1), "failed": failed,
                     "requests": len(load.seen)})
        print(f"edit {n + 1} ({runtime}): last old response {last_old:.1f}s after the command, "
              f"{failed} failed of {len(load.seen)} requests, command {seconds:.1f}s")
    median = statistics.median(r["last_old_response"] for r in runs) if runs else None
    return {"runs": runs, "median_last_old_response": median}


def dev_loop(stack: Stack) -> dict:
    stack.env["SHIP_LOCAL_RUNTIME"] = "process"
    proc = subprocess.Popen([INV, "dev", "--env=local"], cwd=stack.repo, env=stack.env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = []
    try:
        for line in proc.stdout:
            out.append(line)
            if line.startswith("watching "):
                break
        time.sleep(1)
        started = time.monotonic()
        edit(stack, int(time.time()) * 10 + 9)
        for line in proc.stdout:
            out.append(line)
            if re.match(r"^\d\d:\d\d:\d\d (serving|FAILED|no change)", line):
                break
        seconds = time.monotonic() - started
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        with open(stack.log, "a") as fh:
            fh.write("\n$ inv dev --env=local\n" + "".join(out))
    verdict = out[-1].strip() if out else ""
    print(f"\n`inv dev`: save to verdict {seconds:.1f}s: {verdict}")
    return {"save_to_verdict_seconds": round(seconds, 1), "verdict": verdict}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edits", type=int, default=3, help="edits measured per runtime")
    parser.add_argument("--runtimes", default="process,container")
    parser.add_argument("--keep", action="store_true", help="leave the private stack and its files")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="ship-devloop-"))
    stack = Stack(base)
    stack.copy_tree()
    print(f"private stack in {base} (log {stack.log}); machine load {os.getloadavg()[0]:.1f}")
    results = {"machine": {"cpus": os.cpu_count(), "load_at_start": round(os.getloadavg()[0], 2)}}
    try:
        results["cold"] = cold(stack)
        results["warm_restart"] = warm_restart(stack)
        for runtime in args.runtimes.split(","):
            if runtime == "container" and not _engine_answers():
                print("\ncontainer runtime skipped: no container engine answers")
                continue
            results[f"edit_{runtime}"] = edit_to_serving(stack, runtime, args.edits)
        results["dev"] = dev_loop(stack)
    finally:
        results["machine"]["load_at_end"] = round(os.getloadavg()[0], 2)
        if not args.keep:
            stack.inv("destroy", "--env=local", check=False)
            stack.inv("local.down", check=False)
            stack.remove_images()
            shutil.rmtree(base, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nwritten to {RESULTS}")
    return 0


def _engine_answers() -> bool:
    sys.path.insert(0, str(ROOT / "src"))
    from ship import container_cli

    return container_cli.detect() is not None


if __name__ == "__main__":
    sys.exit(main())
