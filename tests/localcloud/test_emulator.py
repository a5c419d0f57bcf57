"""The emulator package: the moto internals it relies on still exist, and each
patch does what AWS does. Runs moto in-process (mock_aws) for speed."""

from __future__ import annotations

import hashlib
import inspect
import json
import time
from datetime import datetime, timezone

import boto3
import pytest
from moto import mock_aws

from helpers import wait_until

from ship import oci
from ship.localcloud import emulator
from ship.localcloud.emulator import compat
from ship.localcloud.emulator import ecr as ecr_api
from ship.localcloud.emulator import ecs as ecs_api
from ship.localcloud.emulator import elbv2 as elbv2_api
from ship.localcloud.emulator import logs as logs_api


@pytest.fixture(scope="module", autouse=True)
def installed(tmp_path_factory):
    store = oci.BlobStore(tmp_path_factory.mktemp("blobs"))
    emulator.install(store)
    return store


@pytest.fixture
def aws(monkeypatch):
    for k, v in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        yield {n: boto3.client(n, region_name="us-east-1") for n in ("ecs", "elbv2", "ec2", "ecr", "logs")}


def test_moto_version_is_pinned():
    compat.check_version()
    assert compat.MOTO_MIN <= compat.moto_version() < compat.MOTO_MAX_EXCLUSIVE


def test_moto_internals_we_rely_on_exist():
    m = compat.internals()
    Resp = m.ecs_responses.EC2ContainerServiceResponse
    for name in ("create_service", "update_service", "_get_param", "ecs_backend"):
        assert name in vars(Resp) or name in vars(m.ecs_responses.BaseResponse), name
    B = m.ecs_models.EC2ContainerServiceBackend
    for name in ("_get_service", "_get_cluster", "describe_task_definition", "list_tasks", "stop_task",
                 "describe_tasks", "update_service", "run_task", "register_task_definition",
                 "deregister_task_definition"):
        assert callable(getattr(B, name, None)), name
    assert list(inspect.signature(B.list_tasks).parameters) == [
        "self", "cluster_str", "container_instance", "family", "started_by", "service_name", "desiredStatus"]
    assert list(inspect.signature(B.run_task).parameters) == [
        "self", "cluster_str", "task_definition_str", "count", "overrides", "started_by", "tags", "launch_type",
        "networking_configuration", "group", "platform_version", "capacity_provider_strategy"]
    assert list(inspect.signature(B.stop_task).parameters) == ["self", "cluster_str", "task_str", "reason"]
    assert list(inspect.signature(B.deregister_task_definition).parameters) == ["self", "task_definition_str"]
    assert list(inspect.signature(B.register_task_definition).parameters)[:3] == [
        "self", "family", "container_definitions"]
    b = m.ecs_models.ecs_backends["123456789012"]["us-east-1"]
    for attr in ("clusters", "services", "tasks", "task_definitions", "account_id"):
        assert attr in vars(b), attr
    svc_init = inspect.signature(m.ecs_models.Service.__init__).parameters
    assert "deployment_controller" in svc_init and "network_configuration" in svc_init
    assert "default_capacity_provider_strategy" in inspect.signature(m.ecs_models.Cluster.__init__).parameters
    assert issubclass(m.ecs_exceptions.InvalidParameterException, Exception)
    TG = m.elbv2_models.FakeTargetGroup
    for name in ("register", "deregister", "health_for"):
        assert callable(getattr(TG, name, None)), name
    tg_init = inspect.signature(TG.__init__).parameters
    for p in ("healthcheck_path", "healthcheck_interval_seconds", "healthy_threshold_count", "matcher"):
        assert p in tg_init, p
    assert inspect.signature(m.elbv2_models.FakeHealthStatus.__init__).parameters.keys() >= {
        "instance_id", "port", "health_port", "status", "reason", "description"}
    assert callable(getattr(m.elbv2_models.ELBv2Backend, "describe_target_health", None))
    elb = m.elbv2_models.elbv2_backends["123456789012"]["us-east-1"]
    assert "target_groups" in vars(elb) and "load_balancers" in vars(elb)
    listener_init = inspect.signature(m.elbv2_models.FakeListener.__init__).parameters
    assert {"default_actions", "port", "protocol"} <= set(listener_init)
    E = m.ecr_models.ECRBackend
    assert list(inspect.signature(E.complete_layer_upload).parameters) == [
        "self", "repository_name", "upload_id", "layer_digests", "registry_id"]
    assert list(inspect.signature(E.put_image).parameters) == [
        "self", "repository_name", "image_manifest", "image_tag", "image_manifest_mediatype", "digest"]
    assert "layer_parts" in inspect.getsource(m.ecr_models.LayerUpload.__init__)
    L = m.logs_models.LogsBackend
    for name in ("ensure_log_group", "ensure_log_stream", "put_log_events"):
        assert callable(getattr(L, name, None)), name


def test_every_patch_is_installed():
    m = compat.internals()
    B = m.ecs_models.EC2ContainerServiceBackend
    Resp = m.ecs_responses.EC2ContainerServiceResponse
    for fn in (B.run_task, B.register_task_definition, Resp.create_service):
        assert getattr(fn, "_ship", False), fn
    for fn in (B.list_tasks, B.stop_task, B.deregister_task_definition, Resp.update_service):
        assert fn.__module__.startswith("ship.localcloud.emulator"), fn
    assert getattr(m.elbv2_models.FakeTargetGroup, "_ship_patched", False)
    assert len(emulator.patches()) == len(set(emulator.patches()))


def _network(aws):
    vpc = aws["ec2"].create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    aws["ec2"].modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    sub = aws["ec2"].create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1a")
    sub2 = aws["ec2"].create_subnet(VpcId=vpc, CidrBlock="10.0.2.0/24", AvailabilityZone="us-east-1b")
    sg = aws["ec2"].create_security_group(GroupName="x", Description="x", VpcId=vpc)["GroupId"]
    return vpc, [sub["Subnet"]["SubnetId"], sub2["Subnet"]["SubnetId"]], sg


def _service(aws, **extra):
    ecs = aws["ecs"]
    _vpc, subnets, sg = _network(aws)
    ecs.create_cluster(clusterName="c")
    tds = [ecs.register_task_definition(
        family="f", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        containerDefinitions=[{"name": "app", "image": f"img:{i}", "memory": 512}],
    )["taskDefinition"]["taskDefinitionArn"]
        for i in (1, 2)]
    ecs.create_service(cluster="c", serviceName="s", taskDefinition="f:1", desiredCount=2, launchType="FARGATE",
                       networkConfiguration={"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg]}},
                       **extra)
    return tds


def test_service_echoes_deployment_configuration_and_grace(aws):
    _service(aws, deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True},
                                           "maximumPercent": 200, "minimumHealthyPercent": 50},
             healthCheckGracePeriodSeconds=30, enableECSManagedTags=True, enableExecuteCommand=False)
    svc = aws["ecs"].describe_services(cluster="c", services=["s"])["services"][0]
    assert svc["deploymentConfiguration"] == {
        "deploymentCircuitBreaker": {"enable": True, "rollback": True}, "maximumPercent": 200,
        "minimumHealthyPercent": 50}
    assert svc["healthCheckGracePeriodSeconds"] == 30
    assert svc["enableECSManagedTags"] is True and svc["enableExecuteCommand"] is False
    assert svc["runningCount"] == 0 and svc["pendingCount"] == 0
    [dep] = svc["deployments"]
    assert dep["status"] == "PRIMARY" and dep["rolloutState"] == "IN_PROGRESS" and dep["taskDefinition"].endswith("f:1")


def test_service_defaults_like_aws(aws):
    _service(aws)
    svc = aws["ecs"].describe_services(cluster="c", services=["s"])["services"][0]
    assert svc["deploymentConfiguration"] == {
        "deploymentCircuitBreaker": {"enable": False, "rollback": False}, "maximumPercent": 200,
        "minimumHealthyPercent": 100}


def test_update_service_starts_deployments(aws):
    tds = _service(aws)
    ecs = aws["ecs"]
    first = ecs.describe_services(cluster="c", services=["s"])["services"][0]["deployments"][0]["id"]
    svc = ecs.update_service(cluster="c", service="s", taskDefinition="f:2")["service"]
    assert svc["taskDefinition"] == tds[1]
    assert [(d["status"], d["taskDefinition"]) for d in svc["deployments"]] == [("PRIMARY", tds[1]), ("ACTIVE", tds[0])]
    assert svc["deployments"][1]["id"] == first
    svc = ecs.update_service(cluster="c", service="s", desiredCount=3,
                             deploymentConfiguration={"maximumPercent": 150})["service"]
    assert len(svc["deployments"]) == 2 and svc["desiredCount"] == 3
    assert svc["runningCount"] == 0  # moto would claim 3
    assert svc["deploymentConfiguration"]["maximumPercent"] == 150
    assert svc["deploymentConfiguration"]["minimumHealthyPercent"] == 100
    svc = ecs.update_service(cluster="c", service="s", forceNewDeployment=True)["service"]
    assert [d["status"] for d in svc["deployments"]] == ["PRIMARY", "ACTIVE", "ACTIVE"]
    assert svc["deployments"][0]["taskDefinition"] == tds[1]


def test_tasks_of_the_data_plane_are_listed_and_described(aws):
    _service(aws)
    ecs = aws["ecs"]
    with emulator.LOCK:
        [svc] = [s for s in ecs_api.iter_services() if s.name == "s"]
        task = svc.new_task(svc.deployments[0])
        task.set_status("RUNNING")
        task.set_listening(40000, 8000)
    assert ecs.list_tasks(cluster="c", serviceName="s")["taskArns"] == [task.task_arn]
    assert ecs.list_tasks(cluster="c", serviceName="other")["taskArns"] == []
    [t] = ecs.describe_tasks(cluster="c", tasks=[task.task_arn])["tasks"]
    assert t["lastStatus"] == "RUNNING" and t["group"] == "service:s" and t["startedBy"].startswith("ecs-svc/")
    assert t["containers"][0]["networkBindings"][0]["hostPort"] == 40000
    stopped = ecs.stop_task(cluster="c", task=task.task_arn, reason="because")["task"]
    # StopTask only asks: the task is RUNNING until the data plane has stopped it
    assert stopped["desiredStatus"] == "STOPPED" and stopped["lastStatus"] == "RUNNING"
    assert stopped["stopCode"] == "UserInitiated" and stopped["stoppedReason"] == "because"
    assert ecs.list_tasks(cluster="c")["taskArns"] == []
    assert ecs.list_tasks(cluster="c", desiredStatus="STOPPED")["taskArns"] == [task.task_arn]


def test_force_new_deployment_keeps_the_previous_deployment_as_it_was(aws):
    """Issue 10 #3: moto rewrote the previous deployment's id and createdAt in place."""
    _service(aws)
    ecs = aws["ecs"]
    [before] = ecs.describe_services(cluster="c", services=["s"])["services"][0]["deployments"]
    wait_until(lambda: datetime.now(timezone.utc) > before["createdAt"], 5, "the clock past the first createdAt")
    svc = ecs.update_service(cluster="c", service="s", forceNewDeployment=True)["service"]
    primary, previous = svc["deployments"]
    assert previous["id"] == before["id"] and previous["createdAt"] == before["createdAt"]
    assert previous["status"] == "ACTIVE" and primary["status"] == "PRIMARY"
    assert primary["id"] != before["id"] and primary["createdAt"] > before["createdAt"]
    assert primary["taskDefinition"] == previous["taskDefinition"]


def test_inactive_task_definitions_are_refused_like_aws(aws):
    """Issue 10 #2; DeregisterTaskDefinition: no new tasks, services or updates from an INACTIVE revision."""
    tds = _service(aws)
    ecs = aws["ecs"]
    ecs.deregister_task_definition(taskDefinition=tds[1])
    _vpc, subnets, sg = _network(aws)
    net = {"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg]}}
    calls = [
        lambda: ecs.update_service(cluster="c", service="s", taskDefinition=tds[1]),
        lambda: ecs.create_service(cluster="c", serviceName="s2", taskDefinition=tds[1], desiredCount=1,
                                   launchType="FARGATE", networkConfiguration=net),
        lambda: ecs.run_task(cluster="c", taskDefinition=tds[1], launchType="FARGATE", networkConfiguration=net),
    ]
    for call in calls:
        with pytest.raises(ecs.exceptions.InvalidParameterException, match="TaskDefinition is inactive"):
            call()
    svc = ecs.describe_services(cluster="c", services=["s"])["services"][0]
    assert svc["taskDefinition"] == tds[0] and len(svc["deployments"]) == 1
    assert ecs.describe_services(cluster="c", services=["s2"])["services"] == []
    assert ecs.list_tasks(cluster="c", desiredStatus="RUNNING")["taskArns"] == []


def test_task_definitions_carry_their_timestamps(aws):
    """Issue 10 #5: registeredAt/registeredBy, and deregisteredAt once INACTIVE."""
    ecs = aws["ecs"]
    td = ecs.register_task_definition(family="f", containerDefinitions=[{"name": "a", "image": "i", "memory": 64}])[
        "taskDefinition"]
    assert td["registeredAt"] and td["registeredBy"] == "arn:aws:iam::123456789012:root"
    assert "deregisteredAt" not in td
    gone = ecs.deregister_task_definition(taskDefinition=td["taskDefinitionArn"])["taskDefinition"]
    assert gone["status"] == "INACTIVE" and gone["deregisteredAt"] >= gone["registeredAt"]
    again = ecs.describe_task_definition(taskDefinition=td["taskDefinitionArn"])["taskDefinition"]
    assert again["deregisteredAt"] == gone["deregisteredAt"]


def test_run_task_creates_tasks_for_the_data_plane(aws):
    """Issue 10 #4: RunTask tasks are PROVISIONING, with overrides, startedBy and group, until run."""
    tds = _service(aws)
    ecs = aws["ecs"]
    _vpc, subnets, sg = _network(aws)
    net = {"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg]}}
    with pytest.raises(ecs.exceptions.InvalidParameterException, match="Network Configuration must be provided"):
        ecs.run_task(cluster="c", taskDefinition=tds[0], launchType="FARGATE")
    with pytest.raises(ecs.exceptions.InvalidParameterException, match="not a container in the TaskDefinition"):
        ecs.run_task(cluster="c", taskDefinition=tds[0], launchType="FARGATE", networkConfiguration=net,
                     overrides={"containerOverrides": [{"name": "nope", "command": ["x"]}]})
    resp = ecs.run_task(cluster="c", taskDefinition="f:1", launchType="FARGATE", networkConfiguration=net, count=2,
                        startedBy="migrations", group="jobs:db", overrides={
                            "containerOverrides": [{"name": "app", "command": ["migrate", "--up"],
                                                    "environment": [{"name": "X", "value": "1"}]}],
                            "cpu": "512", "memory": "1024"})
    assert resp["failures"] == [] and len(resp["tasks"]) == 2
    t = resp["tasks"][0]
    assert t["lastStatus"] == "PROVISIONING" and t["desiredStatus"] == "RUNNING"
    assert t["startedBy"] == "migrations" and t["group"] == "jobs:db" and t["launchType"] == "FARGATE"
    assert (t["cpu"], t["memory"]) == ("512", "1024")
    assert t["overrides"]["containerOverrides"][0]["command"] == ["migrate", "--up"]
    assert t["taskArn"].startswith("arn:aws:ecs:us-east-1:123456789012:task/c/")
    listed = ecs.list_tasks(cluster="c", startedBy="migrations")["taskArns"]
    assert sorted(listed) == sorted(x["taskArn"] for x in resp["tasks"])
    with emulator.LOCK:
        [local] = [x for x in ecs_api.all_local_tasks() if x.task_arn == t["taskArn"]]
        td = ecs_api.task_definition_of(local)
        container = ecs_api.effective_container(td, local.overrides)
    assert container["command"] == ["migrate", "--up"] and {"name": "X", "value": "1"} in container["environment"]
    assert local.owner_service is None and local.process == ecs_api.PROCESS


def test_emulator_state_pickles_with_the_backends(aws):
    """The persistence work pickles moto's backends with these stores: nothing unpicklable may hide here."""
    import pickle

    from moto.ecs.models import ecs_backends

    _service(aws)
    with emulator.LOCK:
        [svc] = [s for s in ecs_api.iter_services() if s.name == "s"]
        svc.new_task(svc.deployments[0])
        svc.state.steady = True
        blob = pickle.dumps((ecs_backends["123456789012"]["us-east-1"], ecs_api.STORE))
    backend, store = pickle.loads(blob)
    assert store.services[svc.arn].steady is True
    [task] = [t for per in backend.tasks.values() for t in per.values()]
    assert isinstance(task, ecs_api.LocalTask) and task.group == "service:s"


def test_targets_keyed_by_ip_and_port_with_real_states(aws):
    vpc, subnets, sg = _network(aws)
    elb = aws["elbv2"]
    tg = elb.create_target_group(Name="t", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip")[
        "TargetGroups"][0]["TargetGroupArn"]
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": 1001},
                                                     {"Id": "127.0.0.1", "Port": 1002}])
    states = {(h["Target"]["Port"], h["TargetHealth"]["State"]) for h in
              elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]}
    assert states == {(1001, "unused"), (1002, "unused")}  # not behind a load balancer yet
    lb = elb.create_load_balancer(Name="lb", Subnets=subnets, SecurityGroups=[sg])["LoadBalancers"][0]
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    descs = elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
    assert {h["TargetHealth"]["State"] for h in descs} == {"initial"}
    assert {h["TargetHealth"]["Reason"] for h in descs} == {"Elb.RegistrationInProgress"}
    with emulator.LOCK:
        elbv2_api.set_target_health(tg, "127.0.0.1:1001", "healthy", None, None)
        elbv2_api.set_target_health(tg, "127.0.0.1:1002", "unhealthy", "Target.ResponseCodeMismatch",
                                        "Health checks failed with these codes: [500]")
    descs = {h["Target"]["Port"]: h["TargetHealth"] for h in
             elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]}
    assert descs[1001]["State"] == "healthy"
    assert descs[1002] == {"State": "unhealthy", "Reason": "Target.ResponseCodeMismatch",
                           "Description": "Health checks failed with these codes: [500]"}
    elb.deregister_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": 1001}])
    descs = {h["Target"]["Port"]: h["TargetHealth"] for h in
             elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]}
    assert descs[1001]["State"] == "draining" and descs[1001]["Reason"] == "Target.DeregistrationInProgress"
    with emulator.LOCK:
        [spec] = [s for s in elbv2_api.listeners() if s.port == 80]
    assert spec.target_group_arn == tg


def test_ecr_layers_land_in_the_blob_store(aws, installed):
    ecr = aws["ecr"]
    ecr.create_repository(repositoryName="repo")
    blobs = {}
    for data in (b'{"config": {}}', b"layer-bytes" * 1000):
        up = ecr.initiate_layer_upload(repositoryName="repo")
        ecr.upload_layer_part(repositoryName="repo", uploadId=up["uploadId"], partFirstByte=0,
                              partLastByte=len(data) - 1, layerPartBlob=data)
        digest = oci.sha256_digest(data)
        assert ecr.complete_layer_upload(repositoryName="repo", uploadId=up["uploadId"],
                                         layerDigests=[digest])["layerDigest"] == digest
        assert installed.get(digest) == data
        blobs[digest] = data
    up = ecr.initiate_layer_upload(repositoryName="repo")
    ecr.upload_layer_part(repositoryName="repo", uploadId=up["uploadId"], partFirstByte=0, partLastByte=2,
                          layerPartBlob=b"abc")
    with pytest.raises(ecr.exceptions.InvalidParameterException):
        ecr.complete_layer_upload(repositoryName="repo", uploadId=up["uploadId"], layerDigests=["sha256:" + "0" * 64])
    cfg, layer = list(blobs.items())
    manifest = oci.build_manifest(oci.Descriptor(oci.PROCESS_CONFIG_MEDIA_TYPE, cfg[0], len(cfg[1])),
                                  [oci.Descriptor(oci.PROCESS_LAYER_MEDIA_TYPE, layer[0], len(layer[1]))])
    img = ecr.put_image(repositoryName="repo", imageManifest=manifest.decode(), imageTag="v1",
                        imageManifestMediaType=oci.OCI_MANIFEST_MEDIA_TYPE)["image"]
    assert img["imageId"]["imageDigest"] == "sha256:" + hashlib.sha256(manifest).hexdigest()
    # retag keeps the digest
    got = ecr.batch_get_image(repositoryName="repo", imageIds=[{"imageTag": "v1"}])["images"][0]
    ecr.put_image(repositoryName="repo", imageManifest=got["imageManifest"], imageTag="prod",
                  imageManifestMediaType=oci.OCI_MANIFEST_MEDIA_TYPE)
    ids = ecr.list_images(repositoryName="repo")["imageIds"]
    assert {i["imageDigest"] for i in ids} == {img["imageId"]["imageDigest"]}
    with emulator.LOCK:
        found = ecr_api.find_image("us-east-1", "123456789012", "repo", "prod", None)
    assert json.loads(found[0]) == json.loads(manifest)


def test_logs_go_through_the_logs_api(aws):
    aws["logs"].create_log_group(logGroupName="/g")
    now = int(time.time() * 1000)
    with emulator.LOCK:
        assert logs_api.put_log_events("us-east-1", "123456789012", "/g", "p/app/1",
                                       [{"timestamp": now + 1, "message": "b"}, {"timestamp": now, "message": "a"}])
        assert not logs_api.put_log_events("us-east-1", "123456789012", "/missing", "s", [])
    ev = aws["logs"].get_log_events(logGroupName="/g", logStreamName="p/app/1", startFromHead=True)["events"]
    assert [e["message"] for e in ev] == ["a", "b"]


@pytest.mark.parametrize("uri, says", [
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com/repo@sha256:abc", "is not a sha256 digest of 64"),
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com/repo@sha256:" + "A" * 64, "is not a sha256 digest of 64"),
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com/repo@md5:xyz", "is not a digest"),
])
def test_a_malformed_digest_is_named_as_such(installed, uri, says):
    """Issue 10 #5: it used to say 'not an ECR image reference'."""
    from ship.localcloud.runtime.images import ImageError, resolve

    with pytest.raises(ImageError) as err:
        resolve(uri, installed)
    assert "invalid reference format" in str(err.value) and says in str(err.value)
    assert "not an ECR image reference" not in str(err.value)


def test_an_access_key_finds_its_account_without_an_iam_backend_per_partition(aws):
    """moto asks every partition's IAM backend for the request's access key, creating each (six
    backends, ~1,300 managed policies apiece); the emulator asks only those that exist, with the
    same answer: the account whose IAM made the key, in whichever partition, else the default."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends

    from ship.localcloud.emulator import iam

    mine, chinese = "210987654321", "321098765432"
    key = iam_backends[mine]["aws"].create_access_key(
        iam_backends[mine]["aws"].create_user("u", "/", None).name)
    cn = iam_backends[chinese]["aws-cn"]
    cn_key = cn.create_access_key(cn.create_user("v", "/", None).name)
    assert iam.account_of(key.access_key_id) == mine
    assert iam.account_of(cn_key.access_key_id) == chinese
    assert iam.account_of("AKIANOBODYHASTHIS000") == DEFAULT_ACCOUNT_ID
    # through a request: the cluster is made in the key's account
    ecs = boto3.client("ecs", region_name="us-east-1", aws_access_key_id=key.access_key_id,
                       aws_secret_access_key=key.secret_access_key)
    arn = ecs.create_cluster(clusterName="keyed")["cluster"]["clusterArn"]
    assert arn == f"arn:aws:ecs:us-east-1:{mine}:cluster/keyed"
    # and the lookup built no backend: each account has the partitions it was given, no more
    assert set(dict.keys(iam_backends[mine])) == {"aws"}
    assert set(dict.keys(iam_backends[chinese])) == {"aws-cn"}


def test_moto_looks_the_access_key_up_where_the_emulator_replaces_it():
    """moto's request handling imports ``get_account_id_from`` from ``moto.iam.models`` at each
    request: replacing it there is what takes effect."""
    import moto.iam.models
    from moto.core.responses import BaseResponse

    from ship.localcloud.emulator import iam

    assert "from moto.iam.models import get_account_id_from" in inspect.getsource(BaseResponse.get_current_account)
    assert moto.iam.models.get_account_id_from is iam.account_of
