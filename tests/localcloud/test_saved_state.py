"""A local cloud that remembers: the snapshot file (atomic, checked, set aside when it cannot
be loaded), the emulator's whole state through pickle and back (moto in-process), what a
restore does to tasks that were running, and the saver's choice of when to save."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from ship import oci
from ship.fsutil import write_atomically
from ship.localcloud import emulator, persistence
from ship.localcloud.emulator import autoscaling as autoscaling_api
from ship.localcloud.emulator import ecs as ecs_api
from ship.localcloud.emulator import elbv2 as elbv2_api
from ship.localcloud.emulator import state as emulator_state

SRC = Path(__file__).resolve().parents[2] / "src"


def _meta(**kw):
    return {"written_by": emulator_state.fingerprint(), "saved_at": time.time(), "lineage": "L", **kw}


# --------------------------------------------------------------------------- the file


def test_a_snapshot_reads_back_whole():
    data = persistence.encode(_meta(), b"payload bytes")
    meta, payload = persistence.decode(data)
    assert payload == b"payload bytes" and meta["lineage"] == "L" and meta["size"] == 13


@pytest.mark.parametrize("damage, why", [
    (lambda d: d[:-1], "corrupt"),                                        # truncated payload
    (lambda d: d[:-3] + bytes([d[-3] ^ 1]) + d[-2:], "corrupt"),          # one bit flipped
    (lambda d: b"PK\x03\x04" + d, "not a local cloud snapshot"),          # another file
    (lambda d: d[:30], "truncated header"),
    (lambda d: d.replace(b'"format": 1', b'"format": 99'), "snapshot format 99"),
    (lambda d: persistence.MAGIC + b"{nope\n" + d, "unreadable header"),
])
def test_a_damaged_snapshot_is_refused_with_a_reason(damage, why):
    data = persistence.encode(_meta(), b"x" * 1000)
    with pytest.raises(persistence.Unloadable, match=why):
        persistence.decode(damage(data))


CURRENT = {"moto": "5.2.5", "stores": {"ecs": 1, "elbv2": 1, "autoscaling": 1}}


@pytest.mark.parametrize("written, why", [
    ({"moto": "5.2.4", "stores": CURRENT["stores"]}, "written by moto 5.2.4, this is 5.2.5"),
    ({"moto": "5.2.5", "stores": {"ecs": 1, "elbv2": 2, "autoscaling": 1}},
     "the shape of the elbv2 store changed (version 2, this is 1)"),
    ({"moto": "5.2.5", "python": "3.11", "emulator": "a1b2"},
     "written by a local cloud that did not version its stores"),
    # the same moto and store versions: whatever else changed between commits, it loads
    (CURRENT, ""),
    ({"moto": "5.2.5", "python": "3.12", "stores": CURRENT["stores"]}, ""),
    # a store added since (it starts empty) or one no module declares any more (left out)
    ({"moto": "5.2.5", "stores": {"ecs": 1, "elbv2": 1}}, ""),
    ({"moto": "5.2.5", "stores": {**CURRENT["stores"], "gone": 4}}, ""),
])
def test_a_snapshot_loads_unless_moto_or_a_store_shape_differs(written, why):
    assert persistence.incompatibility({"written_by": written}, CURRENT) == why


def test_the_fingerprint_names_moto_and_every_store_with_its_version():
    fp = emulator_state.fingerprint()
    assert set(fp) == {"moto", "stores"}
    assert fp["stores"] == {s.name: s.version for s in emulator.stores()}


_WRITER = r"""
import os, sys, time
sys.path.insert(0, {src!r})
from ship.fsutil import write_atomically
from ship.localcloud import persistence
path = persistence.Path({path!r})
n = 0
while True:
    n += 1
    payload = (b"%08d" % n) * (250_000 + (n % 7) * 50_000)     # 2-4 MB, different each time
    write_atomically(path, persistence.encode({{"n": n}}, payload), durable=True)
    print(n, flush=True)
"""


def test_kill_9_while_writing_never_leaves_a_snapshot_that_fails_to_load(tmp_path):
    """A real writer process killed with SIGKILL at random moments, 15 times: the file is
    always one whole snapshot, the newest or the one before."""
    path = tmp_path / persistence.SNAPSHOT
    rng = random.Random(13)
    for _ in range(15):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER.format(src=str(SRC), path=str(path))],
                                stdout=subprocess.PIPE, text=True)
        try:
            proc.stdout.readline()                      # at least one snapshot was written
            time.sleep(rng.uniform(0.0, 0.15))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        meta, payload = persistence.decode(path.read_bytes())
        assert payload[:8] == b"%08d" % meta["n"]
        persistence._remove_temporaries(tmp_path)
    assert not list(tmp_path.glob(".*tmp*"))


def test_a_write_that_fails_keeps_the_old_snapshot(tmp_path, monkeypatch):
    path = tmp_path / persistence.SNAPSHOT
    write_atomically(path, persistence.encode(_meta(n=1), b"old"), durable=True)

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_atomically(path, persistence.encode(_meta(n=2), b"new"), durable=True)
    monkeypatch.undo()
    assert persistence.decode(path.read_bytes())[1] == b"old"
    assert [p.name for p in tmp_path.iterdir()] == [persistence.SNAPSHOT]


def test_set_aside_keeps_the_newest_few(tmp_path):
    path = tmp_path / persistence.SNAPSHOT
    names, base = [], time.time() - 100
    for i in range(persistence.KEEP_SET_ASIDE + 2):
        path.write_bytes(b"junk %d" % i)
        aside = persistence.set_aside(path, now=base + i)
        os.utime(aside, (base + i, base + i))
        names.append(aside.name)
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == sorted(names[-persistence.KEEP_SET_ASIDE:]) and not path.exists()


@pytest.mark.parametrize("method, target, read", [
    ("GET", "", True),                                                          # S3 GetObject, ListObjects
    ("HEAD", "", True),                                                         # S3 HeadBucket
    ("PUT", "", False),                                                         # S3 PutObject (state, lock)
    ("DELETE", "", False),                                                      # S3 DeleteObject (lock)
    ("POST", "AmazonEC2ContainerServiceV20141113.DescribeServices", True),
    ("POST", "AmazonEC2ContainerServiceV20141113.ListTasks", True),
    ("POST", "AmazonEC2ContainerRegistry_V20150921.BatchGetImage", True),
    ("POST", "Logs_20140328.FilterLogEvents", True),
    ("POST", "AmazonEC2ContainerServiceV20141113.UpdateService", False),
    ("POST", "AmazonEC2ContainerRegistry_V20150921.PutImage", False),
    ("POST", "Logs_20140328.PutLogEvents", False),
    ("POST", "", False),                     # query protocols (EC2, ELBv2, IAM): the action is in the body
])
def test_which_requests_may_change_state(method, target, read):
    assert persistence.is_read_request(method, target) is read


def test_wipe_forgets_the_state_but_keeps_caches(tmp_path):
    for name in (persistence.SNAPSHOT, "listeners.json", "emulator-state.unloadable-1.bin"):
        (tmp_path / name).write_text("x")
    for folder in ("blobs/sha256", "tasks", "rootfs/abc"):
        (tmp_path / folder).mkdir(parents=True)
    assert sorted(persistence.wipe(tmp_path)) == sorted([persistence.SNAPSHOT, "blobs", "tasks"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emulator-state.unloadable-1.bin", "listeners.json",
                                                          "rootfs"]
    assert persistence.wipe(tmp_path) == []


# --------------------------------------------------------------------------- moto's state, in-process


@pytest.fixture(scope="module", autouse=True)
def installed(tmp_path_factory):
    emulator.install(oci.BlobStore(tmp_path_factory.mktemp("blobs")))


@pytest.fixture
def env(monkeypatch):
    for k, v in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                 "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}.items():
        monkeypatch.setenv(k, v)


def _clients():
    return {n: boto3.client(n, region_name="us-east-1") for n in ("s3", "ecr", "ecs", "ec2", "elbv2", "logs", "iam")}


EXEC_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"


def _make_everything(c) -> dict:
    c["s3"].create_bucket(Bucket="hello-tfstate-local")
    c["s3"].put_bucket_versioning(Bucket="hello-tfstate-local", VersioningConfiguration={"Status": "Enabled"})
    c["s3"].put_object(Bucket="hello-tfstate-local", Key="env/local/terraform.tfstate", Body=b'{"serial": 7}')
    repo = c["ecr"].create_repository(repositoryName="hello-local")["repository"]
    c["iam"].create_role(RoleName="hello-exec", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17",
                         "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                        "Principal": {"Service": "ecs-tasks.amazonaws.com"}}]}))
    c["iam"].attach_role_policy(RoleName="hello-exec", PolicyArn=EXEC_POLICY)
    vpc = c["ec2"].create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    tg = c["elbv2"].create_target_group(Name="hello-local", Protocol="HTTP", Port=5000, VpcId=vpc,
                                        TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    c["logs"].create_log_group(logGroupName="/ecs/hello-local")
    c["logs"].create_log_stream(logGroupName="/ecs/hello-local", logStreamName="s")
    c["logs"].put_log_events(logGroupName="/ecs/hello-local", logStreamName="s",
                             logEvents=[{"timestamp": int(time.time() * 1000), "message": "hello"}])
    c["ecs"].create_cluster(clusterName="hello-local")
    td = c["ecs"].register_task_definition(
        family="hello-local", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        containerDefinitions=[{"name": "hello", "image": f"{repo['repositoryUri']}:v1", "memory": 512,
                               "portMappings": [{"containerPort": 5000}]}])["taskDefinition"]["taskDefinitionArn"]
    c["ecs"].create_service(cluster="hello-local", serviceName="hello-local", taskDefinition=td, desiredCount=2,
                            launchType="FARGATE",
                            loadBalancers=[{"targetGroupArn": tg, "containerName": "hello", "containerPort": 5000}])
    return {"vpc": vpc, "tg": tg, "td": td}


def _roundtrip(payload: bytes) -> None:
    emulator_state.install(emulator_state.loads(payload))


def test_the_whole_state_survives_a_restart(env):
    with mock_aws():
        c = _clients()
        made = _make_everything(c)
        public = sorted(i["ImageId"] for i in c["ec2"].describe_images(Owners=["amazon"])["Images"])
        c["ec2"].deregister_image(ImageId=public[0])
        with emulator.LOCK:
            payload = emulator_state.dumps(emulator_state.capture())
    # neither the AWS-managed IAM policies (24 MB) nor the public AMIs (1 MB) are copied
    assert len(payload) < 200_000
    with mock_aws():
        c = _clients()
        assert c["ecs"].list_clusters()["clusterArns"] == []          # a new, empty emulator
        _roundtrip(payload)
        body = c["s3"].get_object(Bucket="hello-tfstate-local", Key="env/local/terraform.tfstate")["Body"].read()
        assert body == b'{"serial": 7}'
        assert c["s3"].get_bucket_versioning(Bucket="hello-tfstate-local")["Status"] == "Enabled"
        svc = c["ecs"].describe_services(cluster="hello-local", services=["hello-local"])["services"][0]
        assert svc["taskDefinition"] == made["td"] and svc["desiredCount"] == 2
        assert svc["deployments"][0]["rolloutState"] == "IN_PROGRESS"      # the emulator's own service state
        assert c["ecs"].describe_task_definition(taskDefinition="hello-local:1")["taskDefinition"]["revision"] == 1
        assert c["ecr"].describe_repositories()["repositories"][0]["repositoryName"] == "hello-local"
        assert c["ec2"].describe_vpcs(VpcIds=[made["vpc"]])["Vpcs"][0]["CidrBlock"] == "10.30.0.0/16"
        assert c["elbv2"].describe_target_groups(TargetGroupArns=[made["tg"]])["TargetGroups"][0]["Port"] == 5000
        events = c["logs"].get_log_events(logGroupName="/ecs/hello-local", logStreamName="s")["events"]
        assert [e["message"] for e in events] == ["hello"]
        attached = c["iam"].list_attached_role_policies(RoleName="hello-exec")["AttachedPolicies"]
        assert [p["PolicyArn"] for p in attached] == [EXEC_POLICY]
        policy = c["iam"].get_policy(PolicyArn=EXEC_POLICY)["Policy"]
        assert policy["AttachmentCount"] == 1
        # moto's own AWS-managed policies are all there, once
        listed = c["iam"].list_policies(Scope="AWS", MaxItems=1000)["Policies"]
        assert len(listed) == 1000 and len({p["Arn"] for p in listed}) == 1000
        # moto's public AMIs are there (not the one deregistered), and belong to the restored EC2
        assert sorted(i["ImageId"] for i in c["ec2"].describe_images(Owners=["amazon"])["Images"]) == public[1:]
        c["ec2"].create_tags(Resources=[public[1]], Tags=[{"Key": "k", "Value": "v"}])
        assert c["ec2"].describe_images(ImageIds=[public[1]])["Images"][0]["Tags"] == [{"Key": "k", "Value": "v"}]
        # and the restored emulator keeps working
        c["ecs"].update_service(cluster="hello-local", service="hello-local", desiredCount=3)
        c["iam"].detach_role_policy(RoleName="hello-exec", PolicyArn=EXEC_POLICY)


def test_log_events_written_after_a_restore_get_ids_of_their_own(env):
    """moto counts event ids on a class, outside any snapshot: after a restore the count must go
    on from the restored events, or new events repeat their ids and a client that tells events
    apart by eventId (``inv logs``, paging through FilterLogEvents) drops the new ones."""
    from moto.logs.models import LogEvent

    def put(logs, *messages):
        logs.put_log_events(logGroupName="g", logStreamName="s",
                            logEvents=[{"timestamp": int(time.time() * 1000), "message": m} for m in messages])

    with mock_aws():
        logs = boto3.client("logs", region_name="us-east-1")
        logs.create_log_group(logGroupName="g")
        logs.create_log_stream(logGroupName="g", logStreamName="s")
        put(logs, "one", "two", "three")
        with emulator.LOCK:
            payload = emulator_state.dumps(emulator_state.capture())
    LogEvent._event_id = 0          # a new local cloud process: moto's count starts again
    with mock_aws():
        logs = boto3.client("logs", region_name="us-east-1")
        _roundtrip(payload)
        put(logs, "four", "five")
        events = logs.filter_log_events(logGroupName="g")["events"]
        assert [e["message"] for e in events] == ["one", "two", "three", "four", "five"]
        assert len({e["eventId"] for e in events}) == 5
        paged, token = [], None
        while True:
            page = logs.filter_log_events(logGroupName="g", limit=2, **({"nextToken": token} if token else {}))
            paged += [e["message"] for e in page["events"]]
            token = page.get("nextToken")
            if not token:
                break
        assert paged == ["one", "two", "three", "four", "five"]


@dataclasses.dataclass
class _DemoStore:
    started_at: float = 0.0
    things: dict = dataclasses.field(default_factory=dict)


def test_stores_beside_moto_are_saved_and_restored_in_place(env):
    store = emulator.keep("test-demo", _DemoStore())
    try:
        with mock_aws():
            store.started_at, store.things = 1234.5, {"a": [1, 2]}
            with emulator.LOCK:
                payload = emulator_state.dumps(emulator_state.capture())
            same = store
            store.started_at, store.things = 0.0, {}
            _roundtrip(payload)
        assert same is store and store.started_at == 1234.5 and store.things == {"a": [1, 2]}
        assert "test-demo" in [s.name for s in emulator.stores()]
    finally:
        emulator._STORES.pop("test-demo", None)


def test_keep_takes_dataclass_instances_only():
    with pytest.raises(TypeError, match="dataclass instance"):
        emulator.keep("bad", {"a": 1})


def test_a_snapshot_that_does_not_unpickle_is_set_aside_and_the_cloud_starts_empty(env, tmp_path):
    path = tmp_path / persistence.SNAPSHOT
    path.write_bytes(persistence.encode(_meta(), b"\x80\x05not a pickle"))
    with mock_aws():
        restored = persistence.restore(tmp_path, emulator.LOCK)
        assert boto3.client("ecs", region_name="us-east-1").list_clusters()["clusterArns"] == []
    assert not restored.loaded and restored.set_aside and restored.set_aside.is_file()
    assert not path.exists()
    assert restored.message.startswith("the local cloud's saved state could not be loaded (UnpicklingError")
    assert "\n" not in restored.message and str(restored.set_aside) in restored.message


def test_every_store_beside_moto_is_saved_and_restored(env):
    """The stores of main's emulator modules (ECS, ELBv2, Application Auto Scaling) come back
    with moto's backends: the scheduler's memory, target health and draining, and tags."""
    assert {"ecs", "elbv2", "autoscaling"} <= {s.name for s in emulator.stores()}
    with mock_aws():
        c = _clients()
        made = _make_everything(c)
        aas = boto3.client("application-autoscaling", region_name="us-east-1")
        target = aas.register_scalable_target(
            ServiceNamespace="ecs", ResourceId="service/hello-local/hello-local",
            ScalableDimension="ecs:service:DesiredCount", MinCapacity=1, MaxCapacity=4,
            Tags={"team": "web"})["ScalableTargetARN"]
        svc_arn = c["ecs"].describe_services(cluster="hello-local", services=["hello-local"])[
            "services"][0]["serviceArn"]
        with emulator.LOCK:
            ecs_api.STORE.service(svc_arn).steady = True
            ecs_api.STORE.service(svc_arn).next_launch_at = 1234.5
            elbv2_api.register_target(made["tg"], "127.0.0.1", 41001)
            elbv2_api.register_target(made["tg"], "127.0.0.1", 41002)
            elbv2_api.set_target_health(made["tg"], "127.0.0.1:41001", "healthy", None, None)
        # a target behind a load balancer drains for the deregistration delay: a wall-clock deadline
        c["ec2"].create_subnet(VpcId=made["vpc"], CidrBlock="10.30.1.0/24", AvailabilityZone="us-east-1a")
        subnets = [sn["SubnetId"] for sn in c["ec2"].describe_subnets(
            Filters=[{"Name": "vpc-id", "Values": [made["vpc"]]}])["Subnets"]]
        lb = c["elbv2"].create_load_balancer(Name="hello-local", Subnets=subnets)["LoadBalancers"][0]
        c["elbv2"].create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                                   DefaultActions=[{"Type": "forward", "TargetGroupArn": made["tg"]}])
        with emulator.LOCK:
            elbv2_api.deregister_target(made["tg"], "127.0.0.1", 41002)
            before = (dataclasses.replace(ecs_api.STORE), dataclasses.replace(elbv2_api.STORE),
                      dataclasses.replace(autoscaling_api.STORE))
            payload = emulator_state.dumps(emulator_state.capture())
            for store in (ecs_api.STORE, elbv2_api.STORE, autoscaling_api.STORE):   # what a new process has
                for f in dataclasses.fields(store):
                    setattr(store, f.name, {})
    with mock_aws():
        c = _clients()
        _roundtrip(payload)
        assert (ecs_api.STORE, elbv2_api.STORE, autoscaling_api.STORE) == before
        assert ecs_api.STORE.service(svc_arn).steady and ecs_api.STORE.service(svc_arn).next_launch_at == 1234.5
        health = {h["Target"]["Port"]: h["TargetHealth"]["State"]
                  for h in c["elbv2"].describe_target_health(TargetGroupArn=made["tg"])["TargetHealthDescriptions"]}
        assert health == {41001: "healthy", 41002: "draining"}
        aas = boto3.client("application-autoscaling", region_name="us-east-1")
        assert aas.list_tags_for_resource(ResourceARN=target)["Tags"] == {"team": "web"}


def test_tasks_that_were_running_are_settled_by_the_data_plane_after_a_restore(env, tmp_path):
    """One place decides what becomes of a restored running task: the data plane's first
    step stops it with the reason, deregisters its target and says so in the service's events."""
    from ship.localcloud.fargate.dataplane import ORPHAN_REASON, DataPlane

    with mock_aws():
        c = _clients()
        made = _make_everything(c)
        with emulator.LOCK:
            svc = next(s for s in ecs_api.iter_services() if s.name == "hello-local")
            running = svc.new_task(svc.deployments[0])
            running.set_listening(41001, 5000)
            running.set_status("RUNNING")
            running.started_at = running.created_at
            running.process = "an-earlier-run"          # what a snapshot of another process holds
            elbv2_api.register_target(made["tg"], "127.0.0.1", 41001)
            payload = emulator_state.dumps(emulator_state.capture())
    with mock_aws():
        c = _clients()
        _roundtrip(payload)
        c["ecs"].update_service(cluster="hello-local", service="hello-local", desiredCount=0)
        plane = DataPlane(tmp_path, endpoint="http://127.0.0.1:1", runners=[])
        plane.reconcile()
        [task] = c["ecs"].describe_tasks(cluster="hello-local", tasks=[running.task_arn])["tasks"]
        assert task["lastStatus"] == "STOPPED" and task["stoppedReason"] == ORPHAN_REASON
        assert "the local cloud restarted" in ORPHAN_REASON
        assert plane.runs == {}                        # never started again: a new task replaces it
        health = c["elbv2"].describe_target_health(TargetGroupArn=made["tg"])["TargetHealthDescriptions"]
        assert [h["TargetHealth"]["State"] for h in health] in ([], ["draining"])
        events = c["ecs"].describe_services(cluster="hello-local", services=["hello-local"])["services"][0]["events"]
        assert any(f"(task {running.id}): the local cloud restarted" in e["message"] for e in events)


# What each store saves, by shape: a change here without a new version in the store's module would
# let a snapshot saved before load into code that misreads it. When this test fails, bump the
# store's version (emulator.keep(..., version=N+1)) and record the new shape's digest and version.
SHAPES = {
    "ecs": (1, "b21e0a2c95022d23"),
    "elbv2": (2, "33b39cd1df78f04a"),
    "autoscaling": (2, "03c4855d75fb8e02"),
}


def _shape(cls) -> list:
    """A class's saved shape: a dataclass's fields and their types, or the attributes its
    ``__init__`` sets (classes of ours kept inside moto's objects)."""
    import ast
    import inspect
    import textwrap

    if dataclasses.is_dataclass(cls):
        return [cls.__name__, [(f.name, str(f.type)) for f in dataclasses.fields(cls)]]
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls.__init__)))
    attrs = sorted({n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store)
                    and isinstance(n.value, ast.Name) and n.value.id == "self"})
    return [cls.__name__, attrs]


def _store_classes() -> dict[str, list]:
    from ship.localcloud.emulator import ecs

    return {"ecs": [ecs.EcsStore, ecs.ServiceState, ecs.LocalTask],
            "elbv2": [elbv2_api.ElbStore, elbv2_api.TargetHealth, elbv2_api.Draining],
            "autoscaling": [autoscaling_api.AutoScalingStore, autoscaling_api.ScalingActivity,
                            autoscaling_api.NotScaledReason, autoscaling_api.ScalingMemory]}


def test_a_store_whose_shape_changes_gets_a_new_version():
    import hashlib

    stores = {s.name: s for s in emulator.stores() if not s.name.startswith("test-")}
    assert set(stores) == set(SHAPES), "a new store: add it to SHAPES and _store_classes"
    for name, classes in _store_classes().items():
        digest = hashlib.sha256(json.dumps([_shape(c) for c in classes]).encode()).hexdigest()[:16]
        version, recorded = SHAPES[name]
        assert (stores[name].version, digest) == (version, recorded), (
            f"the {name} store's shape changed: bump its version and record ({stores[name].version + 1}, "
            f"{digest!r}) in SHAPES")


# --------------------------------------------------------------------------- the saver


def test_the_saver_writes_only_what_changed_and_tracks_writes(env, tmp_path):
    with mock_aws():
        saver = persistence.Saver(tmp_path, emulator.LOCK, "lineage-1", busy=lambda: False)
        c = _clients()
        c["ecs"].create_cluster(clusterName="one")
        assert saver.save() and saver.saves == 1
        assert saver.save() and saver.saves == 1            # nothing changed: nothing written
        c["ecs"].create_cluster(clusterName="two")
        assert saver.save() and saver.saves == 2
        meta, _ = persistence.decode((tmp_path / persistence.SNAPSHOT).read_bytes())
        assert meta["lineage"] == "lineage-1" and meta["written_by"] == emulator_state.fingerprint()

    calls = []
    app = saver.track(lambda environ, start: calls.append(environ["REQUEST_METHOD"]) or [b""])
    app({"REQUEST_METHOD": "POST", "HTTP_X_AMZ_TARGET": "AmazonEC2ContainerServiceV20141113.ListTasks"}, None)
    assert not saver._dirty.is_set()
    app({"REQUEST_METHOD": "PUT"}, None)
    assert saver._dirty.is_set() and calls == ["POST", "PUT"]


def test_a_failing_save_is_logged_once_and_never_raises(env, tmp_path, caplog):
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")
    with mock_aws():
        saver = persistence.Saver(blocked, emulator.LOCK, "x", busy=lambda: False)
        assert saver.save() is False and saver.save() is False
    assert "saving the local cloud's state failed" in saver.last_error
    assert len([r for r in caplog.records if "saving the local cloud's state failed" in r.getMessage()]) == 1
