"""The main job: an environment from nothing (or from any state) to serving.

Phases: the local cloud (emulator environments), the state (bucket, Terraform
init), the image (build once, push, prepare), the infrastructure (Terraform
apply), the rollout (the service steady on the image) and health (the URL
answers). They overlap wherever the dependency graph allows:

* **cold** (emulator, no service yet): the image is built while the local
  cloud starts (from nothing: no registry to ask first) and Terraform initialises; its digest is known before it is
  pushed, so Terraform's apply starts at once with the digest-pinned image
  and creates the service with it. The push waits only for the repository
  (Terraform creates it in the first second) and is done, and the image
  unpacked by the local cloud, long before the provider's ~70 s of fixed
  waits (VPC, then the load balancer) end. The service's first deployment is
  the rollout: no second one. When the build is the slower (a container build),
  what does not need the image (the load balancer and its network, the ECS
  cluster, the repository) is applied first, beside the build, and the task
  definition and the service right after it.
* **warm** (emulator, the service exists): Terraform (init, apply: usually
  "No changes") runs beside the rollout, not before it: it starts once the
  image is built and unpacked (CPU the rollout needs on a small machine) and
  fills the rollout's wait for health checks. When nothing Terraform reads
  changed since its last successful apply (``ship.applied``: configuration,
  settings, variables, binary, backend, the state's serial, the local cloud's
  lineage), Terraform is left out; ``inv infra.apply`` always runs it.
* **AWS**: one step after the other, as a registry push and a real apply need.

Before any of it, ``stack.before_terraform`` settles what a killed run left: an
apply that did not finish (rebuilt on the emulator), a state lock no live run
holds (cleared when its run ended with an earlier local cloud, named otherwise).
Terraform's init keeps the committed provider lock (``-lockfile=readonly``), and
the command holds the environment's operation lock (``ship.oplock``) throughout.

The summary shows the phases on a common time axis, the provider's fixed
waits on the critical path measured in the same run (the floor no emulator
can shorten) and the ratio, the outputs once (with the task definition the
service really runs), and the URL on the last line.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Sequence

from ship import applied, paths, terraform
from ship.actions import Options
from ship.actions.deploy import deploy_image
from ship.aws import Session
from ship.config import Environment
from ship.domain import Service, family_revision
from ship.errors import ShipError
from ship.images import Built, build, prepare_image, push
from ship.progress import Progress, TerraformWatch, render_timeline, waits_text
from ship.queries import current_image, current_service, image_of, service_active, service_url, target_of
from ship.registry import ImageRef
from ship.stack import (after_apply, before_terraform, ensure_local_cloud, ensure_state_bucket, image_for_terraform,
                        outputs_of, require_state_bucket, skip_terraform, terraform_image, terraform_outputs)

# What a cold deploy creates before its image is built when the build is the slower: the load
# balancer (with the network it needs), the ECS cluster and the image repository, which hold all
# of the provider's fixed waits; the task definition and the service need the image.
EARLY_TARGETS = ["module.loadbalancer", "module.ecs.aws_ecs_cluster.this", "module.ecr"]
BUILD_GRACE = 5.0           # seconds a cold deploy waits for the build before applying without it
REPOSITORY_WAIT = 120.0     # seconds the push waits for Terraform to create the repository


def wait_for_url(url: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return json.loads(resp.read() or b"{}")
                last = f"HTTP {resp.status}"
        except urllib.error.HTTPError as err:
            last = f"HTTP {err.code}"
        except OSError as err:
            last = str(err)
        time.sleep(0.25)
    raise ShipError(f"{url} did not answer 200 within {timeout:.0f}s (last: {last})")


def _image_result(built: Built, ref: ImageRef) -> str:
    how = "found in the registry" if built.image is None else f"{built.kind} image built in {built.seconds:.1f}s"
    return f"{built.tag} {ref.digest[:19]}… ({how})"


def _infrastructure_result(watch: TerraformWatch) -> str:
    events = watch.events
    parts = [events.verdict or "applied"]
    waits = events.provider_waits()
    if waits:
        parts.append(f"provider waits {waits_text(waits)}")
    return "; ".join(parts)


def session_with_clients(env: Environment) -> Session:
    """A session whose clients a cold deploy calls first are made (their models parsed)."""
    session = Session(env)
    for client in ("s3", "ecs", "ecr", "elbv2"):
        getattr(session, client)
    return session


def wait_for_repository(env: Environment, session: Session, cancel: threading.Event) -> None:
    """Until Terraform has created the image repository (or the deploy is cancelled)."""
    deadline = time.monotonic() + REPOSITORY_WAIT
    while session.ecr.describe_repository(env.repository_name) is None:
        if cancel.is_set() or time.monotonic() > deadline:
            raise ShipError(f"the ECR repository {env.repository_name} did not appear: "
                            "the image was built but not pushed")
        cancel.wait(0.25)


class _Worker:
    """A function on a thread of its own; ``result()`` returns its value or raises its error."""

    def __init__(self, name: str, fn, *args):
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn, args), name=name, daemon=True)
        self._thread.start()

    def _run(self, fn, args) -> None:
        try:
            self._value = fn(*args)
        except BaseException as exc:  # handed to whoever waits on the result
            self._error = exc

    def join(self) -> None:
        while self._thread.is_alive():
            self._thread.join(0.2)

    def result(self):
        self.join()
        if self._error is not None:
            raise self._error
        return self._value


class Up:
    """One ``inv deploy --env=E``: the phases, the order they run in, and the summary."""

    def __init__(self, env: Environment, opts: Options, progress: Progress, verbose: bool = False,
                 session: Session | None = None):
        self.env, self.opts, self.progress, self.verbose = env, opts, progress, verbose
        self._session: Session | None = session
        self.info: dict = {}
        self.watches: list[TerraformWatch] = []
        self.init_seconds: float | None = None        # when this command ran `terraform init`
        self.outputs: dict = {}
        self.ref: ImageRef | None = None
        self.mode = ""
        self.service: Service | None = None
        self.cancel = threading.Event()
        self._built: Built | None = None
        self._image_built = threading.Event()
        self._mode_known = threading.Event()
        self._outputs: _Worker | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("the deploy has no AWS session yet")
        return self._session

    def say(self, text: str) -> None:
        """Lines from the actions underneath (their own elapsed stamps removed)."""
        self.progress.say(text)

    # ---- the whole job

    def run(self) -> str | None:
        terraform.binary()  # before anything starts: a missing binary changes nothing
        early: _Worker | None = None
        clients: _Worker | None = None
        try:
            running = self._running_local_cloud()
            empty = self.env.emulator and not self.opts.dry_run and running is None and self._nothing_saved()
            if empty:
                # a local cloud about to start from nothing has no image to find: build beside its
                # start, and make the AWS clients (their models parsed) while it starts
                early = _Worker("image", self._image_job, True)
                clients = _Worker("clients", session_with_clients, self.env) if self._session is None else None
            self.local_cloud(running)
            if clients is not None:
                self._session = clients.result()
            self._session = self._session or Session(self.env)   # the command's one session, shared by the phases
            started_empty = empty and self.info.get("restored") is False
            # before anything else touches the stack: what a killed or cut-off run left (its
            # partial apply rebuilt, a lock its dead run kept) is settled, or named, here
            before_terraform(self.env, self.session, self.info, self.say, dry_run=self.opts.dry_run,
                             empty=started_empty)
            if self.opts.dry_run:
                self.dry_run()
                return None
            if not self.env.emulator:
                self.mode = "aws"
                self.in_order()
            else:
                image = early or _Worker("image", self._image_job)   # built at once, pushed when it can be
                # a local cloud started from nothing runs no service
                self.mode = "warm" if not started_empty and service_active(self.session, self.env) else "cold"
                self._mode_known.set()
                if self.mode == "warm":
                    self.warm(image)
                else:
                    self.cold(image)
            url, body = self.health()
        finally:
            self.cancel.set()
            self._mode_known.set()
        self.summary(url, body)
        return url

    def cold(self, image: _Worker) -> None:
        tf = self.state()
        if not self._image_built.wait(BUILD_GRACE):
            # The build takes longer than Terraform's start (a container build, a first build
            # of the dependencies): create now what does not need the image, the provider's
            # long waits among it; the service and its task definition follow the build.
            self.infrastructure(tf, "pending", targets=EARLY_TARGETS)
        self._image_built.wait()
        built = self._built
        if built is None:          # the build failed: its error is the one to report
            image.result()
            raise ShipError("the image was not built")
        ref = self._expected_ref(built)
        self.infrastructure(tf, ref.uri, outputs_later=True)
        self.ref = image.result()
        self.rollout(self.ref)
        self.outputs = self._outputs.result() if self._outputs is not None else {}

    def warm(self, image: _Worker) -> None:
        # Terraform starts once the image is built and unpacked: on a machine with few cores
        # it would slow them down; beside the rollout it fills the wait for health checks.
        self.ref = image.result()
        infra = _Worker("infrastructure", self._warm_infrastructure)
        try:
            self.rollout(self.ref)
        except BaseException:
            infra.join()        # never leave Terraform running (and holding the state lock) behind
            raise
        infra.result()

    def in_order(self) -> None:
        tf = self.state()
        if self.session.ecr.describe_repository(self.env.repository_name) is None:
            self.say(f"creating the image repository {self.env.repository_name} first")
            ecr = terraform.Runner(self.env, self.say, on_line=self._quiet)
            ecr.apply({"image": "pending"}, targets=["module.ecr"])
        self.ref = self.image()
        self.infrastructure(tf, terraform_image(tf, self.session) or self.ref.uri)
        self.rollout(self.ref)

    def dry_run(self) -> None:
        tf = self.state()
        tf.plan({"image": terraform_image(tf, self.session) or current_image(self.env, self.session)
                 or "(built at apply)"})
        return None

    # ---- phases

    def _running_local_cloud(self) -> dict | None:
        if not self.env.emulator:
            return None
        from ship.config import local_port
        from ship.localcloud import control

        return control.status(paths.local_cloud_dir(), port=local_port())

    @staticmethod
    def _nothing_saved() -> bool:
        from ship.localcloud import persistence

        return not persistence.snapshot_path(paths.local_cloud_dir()).is_file()

    def local_cloud(self, running: dict | None) -> None:
        if not self.env.emulator:
            return
        phase = self.progress.start("local cloud", "starting" if running is None else "")
        self.info = ensure_local_cloud(self.env, self.say) or {}
        result = f"{'started' if running is None else 'running'} (pid {self.info.get('pid')})"
        if self.info.get("state_message") and running is None:
            result += f"; {self.info['state_message']}"
        self.progress.finish(phase, result)

    def state(self) -> terraform.Runner:
        phase = self.progress.start("state", "state bucket")
        if self.env.emulator:
            created = ensure_state_bucket(self.env, self.session, self.say, dry_run=self.opts.dry_run)
        else:
            require_state_bucket(self.env, self.session)
            created = False
        self.progress.wait(phase, "terraform init")
        tf = terraform.Runner(self.env, self.say, on_line=self._quiet)
        started = time.monotonic()
        initialized = tf.init()
        if initialized:
            self.init_seconds = time.monotonic() - started
        self.progress.finish(phase, f"bucket {self.env.state_bucket} {'created' if created else 'exists'}; "
                                    f"terraform init{'' if initialized else ': up to date'}")
        return tf

    def image(self) -> ImageRef:
        phase = self.progress.start("image", "building")
        built = build(self.env, self.session, self.say, allow_dirty=self.env.emulator)
        self.progress.wait(phase, "pushing")
        ref = push(self.env, self.session, built, self.say)
        self._prepare(phase, ref)
        self.progress.finish(phase, _image_result(built, ref))
        return ref

    def infrastructure(self, tf: terraform.Runner, image: str, outputs_later: bool = False,
                       targets: list[str] | None = None) -> None:
        phase = self.progress.start("infrastructure" + (" (without the service)" if targets else ""),
                                    "terraform apply")
        watch = TerraformWatch(self.progress, phase, verbose=self.verbose)
        self.watches.append(watch)
        tf.on_line = watch
        try:
            tf.apply({"image": image}, targets=targets)
        except ShipError:
            self.progress.finish(phase, "failed", failed=True)
            raise
        # on the command's one session, which the image thread shares (its clients are made under a lock)
        after_apply(self.env, self.session, self.info, image, self.say, full=not targets)
        self.progress.finish(phase, _infrastructure_result(watch))
        if targets:
            return
        if outputs_later:
            self._outputs = _Worker("outputs", self._read_outputs, tf)
        else:
            self.outputs = self._read_outputs(tf)

    def rollout(self, ref: ImageRef) -> None:
        phase = self.progress.start("rollout", f"{self.env.service_name} onto {ref.digest[:19]}…")
        try:
            svc = deploy_image(self.env, ref, self.opts, self.say, self.session)
        except ShipError:
            self.progress.finish(phase, "failed", failed=True)
            raise
        self.service = service = current_service(self.session, target_of(self.env))
        self.progress.finish(phase, f"{family_revision(svc.task_definition)} steady, "
                                    f"{service.running}/{service.desired} running")

    def health(self) -> tuple[str | None, dict]:
        phase = self.progress.start("health", "the URL")
        url = service_url(self.env, self.session, self.service.target_group_arns if self.service else [])
        if not url:
            self.progress.finish(phase, "no load balancer in front of the service")
            return None, {}
        body = wait_for_url(url + "/")
        self.progress.finish(phase, f"{url}/ answered: version {body.get('version')} from {body.get('instance')}")
        return url, body

    # ---- the image on the local cloud: built at once, pushed as soon as there is a repository

    def _image_job(self, fresh: bool = False) -> ImageRef:
        """Build (``fresh``: without asking the registry, which a local cloud starting from
        nothing does not have yet), then push once the repository exists."""
        phase = self.progress.start("image", "building")
        try:
            session = None if fresh else self.session
            self._built = build(self.env, session, self.say, allow_dirty=True)
        finally:
            self._image_built.set()
        self._mode_known.wait()
        session = session or self._session or Session(self.env)
        if self.mode == "cold":
            self.progress.wait(phase, "waiting for Terraform to create the repository")
            wait_for_repository(self.env, session, self.cancel)
        self.progress.wait(phase, "pushing")
        ref = push(self.env, session, self._built, self.say)
        if ref.digest != self._built.digest:
            raise ShipError(f"the registry stored {ref.digest} for image {self._built.tag} "
                            f"({self._built.digest} was built): the service would run another image")
        self._prepare(phase, ref)
        self.progress.finish(phase, _image_result(self._built, ref))
        return ref

    def _expected_ref(self, built: Built) -> ImageRef:
        """Where the image will be once pushed: the emulator's ECR names it by its manifest digest."""
        if built.ref is not None:
            return built.ref
        host = f"{self.session.account_id()}.dkr.ecr.{self.env.region}.amazonaws.com"
        return ImageRef(host, self.env.repository_name, built.digest, (built.tag,))

    # ---- the warm path's infrastructure: Terraform beside the rollout

    def _warm_infrastructure(self) -> None:
        # the image of Terraform's own task definition, so that its plan stays empty
        state = applied.read_state(self.session, self.env)
        outputs = outputs_of(state)
        arn = outputs.get("task_definition_arn")
        image = image_of(self.session, arn) if arn else None
        decision = skip_terraform(self.env, self.session, self.info, image, state)
        if decision.skip:
            phase = self.progress.start("infrastructure", "comparing with the last apply")
            self.outputs = outputs
            self.progress.finish(phase, f"Terraform skipped: {decision.reason} (`inv infra.apply "
                                        f"--env={self.env.name}` reconciles changes made outside Terraform)")
            return
        self.say(f"terraform runs: {decision.reason}")
        tf = self.state()
        self.infrastructure(tf, image or image_for_terraform(tf, self.env, self.session))

    def _read_outputs(self, tf: terraform.Runner) -> dict:
        return terraform_outputs(tf, self.session)

    # ---- helpers

    def _prepare(self, phase, ref: ImageRef) -> None:
        if self.env.emulator:
            self.progress.wait(phase, "unpacking on the local cloud")
            prepare_image(ref, self.say)

    def floor(self) -> list:
        """The provider's fixed waits on the critical path of each apply (one after the other)."""
        return [r for watch in self.watches for r in watch.events.provider_waits()]

    def _quiet(self, line: str) -> None:
        if self.verbose and line.strip():
            self.progress.line(line)

    # ---- the summary

    def summary(self, url: str | None, body: dict) -> None:
        total = self.progress.elapsed()
        floor, own = self.floor(), terraform_own(self.init_seconds, self.watches)
        rows = true_outputs(self.outputs, self.service, self.ref, url)
        for line in summary_lines(self.env.name, self.mode, total, self.progress.phases, floor, rows, own):
            self.progress.raw(line)
        self.progress.raw(f"Terraform's full output: {terraform.Runner(self.env).log_path}")
        write_record(self.env, {"environment": self.env.name, "mode": self.mode, "seconds": round(total, 2),
                                "phases": self.progress.report(), **timing_record(floor, own), "outputs": rows})
        if url:
            self.progress.raw(url)


def terraform_own(init_seconds: float | None, watches: list[TerraformWatch]) -> list[tuple[str, float]]:
    """Terraform's own time before it changed anything, on the command's path: its init, and
    each apply's start up to its first change (the provider package's check, the provider's
    schemas, the plan). No API answer shortens it either; the summary sets it beside the floor."""
    own = [("init", init_seconds)] if init_seconds is not None else []
    for watch in watches:
        before = watch.before_first_change()
        if before is not None:
            own.append(("plan", before))
    return own


def timing_record(floor: list, own: Sequence[tuple[str, float]]) -> dict:
    """The floor and Terraform's own time, as the deploy's record keeps them."""
    return {"floor": [{"resource": r.address, "seconds": round(r.seconds, 2)} for r in floor],
            "floor_seconds": round(sum(r.seconds for r in floor), 2),
            "terraform_own": [{"step": step, "seconds": round(sec, 2)} for step, sec in own],
            "terraform_own_seconds": round(sum(sec for _, sec in own), 2)}


def summary_lines(name: str, mode: str, total: float, phases: list, floor: list, rows: dict,
                  own: Sequence[tuple[str, float]] = ()) -> list[str]:
    """The summary: the phases on one time axis, the floor and the ratio (and the same with
    Terraform's own time before its first change, ``own``), the outputs."""
    lines = ["", f"{name} is serving after {total:.1f}s ({mode})", *render_timeline(phases, total)]
    if floor:
        waits = sum(r.seconds for r in floor)
        lines.append(f"  floor: the AWS provider's fixed waits on the critical path: {waits_text(floor)}; "
                     f"this deploy took {total:.1f}s = {total / waits:.2f}x the floor")
        if own:
            mine = sum(sec for _, sec in own)
            parts = " + ".join(f"{step} {sec:.1f}s" for step, sec in own)
            lines.append(f"  and Terraform's own time before it changed anything: {parts}"
                         f"{f' = {mine:.1f}s' if len(own) > 1 else ''}; with it the floor is {waits + mine:.1f}s, "
                         f"this deploy {total / (waits + mine):.2f}x that")
    lines.append("outputs:")
    width = max((len(k) for k in rows), default=0)
    lines += [f"  {key:<{width}}  {rows[key]}" for key in sorted(rows)]
    return lines


def true_outputs(outputs: dict, service, ref: ImageRef | None, url: str | None) -> dict[str, str]:
    """Terraform's outputs, once, with what the service really runs instead of Terraform's own
    first revision (rollouts register the later ones), and the URL that answers."""
    rows = {key: ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            for key, value in (outputs or {}).items()}
    if service is not None:
        rows["task_definition_arn"] = f"{service.task_definition} (the revision the service runs)"
    if ref is not None:
        rows["image"] = ref.uri
    if url:
        terraform_url = rows.get("service_url")
        rows["service_url"] = url + (f" ({terraform_url})" if terraform_url not in (None, url) else "")
    return rows


def write_record(env: Environment, record: dict) -> None:
    """The run as JSON beside Terraform's log (for benchmarks, and for people who script)."""
    path = paths.state_dir() / "logs" / f"deploy-{env.name}.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1))
    except OSError:
        pass


def up(env: Environment, opts: Options, verbose: bool = False, progress: Progress | None = None,
       session: Session | None = None) -> str | None:
    """``inv deploy --env=E``: returns the service's URL (None for a dry run). Without a ``session``,
    one is built once the local cloud runs, and every phase shares it."""
    with (progress or Progress()) as prog:
        return Up(env, opts, prog, verbose, session).run()
