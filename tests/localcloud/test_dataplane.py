"""End-to-end behaviour of the local cloud: real serve process, real task
processes, real health checks and listener traffic; AWS APIs through boto3."""

from __future__ import annotations

import os
import signal
import threading
import time

import requests

from conftest import build_process_image, push_image
from helpers import wait_until

HC_INTERVAL = 5
POLL = 0.25                    # seconds between two looks through the API
CLUSTER = "demo"
SERVICE = "web"


class Stack:
    """cluster + ALB + listener + target group + service, as Terraform would create them."""

    def __init__(self, cloud):
        self.cloud = cloud
        self.ecs = cloud.client("ecs")
        self.elb = cloud.client("elbv2")
        self.ecr = cloud.client("ecr")
        self.logs = cloud.client("logs")
        self.ec2 = cloud.client("ec2")
        self.images = {}

    def build(self):
        vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        subnets = [self.ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24",
                                          AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
                   for i, z in ((1, "a"), (2, "b"))]
        sg = self.ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
        self.ecr.create_repository(repositoryName="demo")
        for version, healthy in (("v1", True), ("v2", True), ("bad", False)):
            config, layer = build_process_image(version, healthy)
            self.images[version] = push_image(self.ecr, "demo", version, config, layer)
        self.logs.create_log_group(logGroupName="/ecs/demo")
        self.ecs.create_cluster(clusterName=CLUSTER)
        lb = self.elb.create_load_balancer(Name="demo", Subnets=subnets, SecurityGroups=[sg],
                                           Type="application")["LoadBalancers"][0]
        self.tg = self.elb.create_target_group(
            Name="demo", Protocol="HTTP", Port=8000, VpcId=vpc, TargetType="ip",
            HealthCheckPath="/health", HealthCheckIntervalSeconds=HC_INTERVAL, HealthCheckTimeoutSeconds=2,
            HealthyThresholdCount=2, UnhealthyThresholdCount=2, Matcher={"HttpCode": "200-299"},
        )["TargetGroups"][0]["TargetGroupArn"]
        self.elb.modify_target_group_attributes(
            TargetGroupArn=self.tg, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "1"}])
        self.elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                                 DefaultActions=[{"Type": "forward", "TargetGroupArn": self.tg}])
        self.td = {v: self.register(v) for v in ("v1", "v2", "bad")}
        self.ecs.create_service(
            cluster=CLUSTER, serviceName=SERVICE, taskDefinition=self.td["v1"], desiredCount=2,
            launchType="FARGATE",
            networkConfiguration={"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg],
                                                          "assignPublicIp": "DISABLED"}},
            loadBalancers=[{"targetGroupArn": self.tg, "containerName": "app", "containerPort": 8000}],
            deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True},
                                     "minimumHealthyPercent": 100, "maximumPercent": 200},
            healthCheckGracePeriodSeconds=0,
        )
        return self

    def register(self, version):
        return self.ecs.register_task_definition(
            family="demo", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
            containerDefinitions=[{
                "name": "app", "image": self.images[version], "memory": 512, "essential": True,
                "portMappings": [{"containerPort": 8000, "protocol": "tcp"}],
                "environment": [{"name": "GREETING", "value": version}],
                "stopTimeout": 5,
                "logConfiguration": {"logDriver": "awslogs", "options": {
                    "awslogs-group": "/ecs/demo", "awslogs-region": "us-east-1",
                    "awslogs-stream-prefix": "web"}},
            }],
        )["taskDefinition"]["taskDefinitionArn"]

    def service(self):
        return self.ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]

    def running_tasks(self):
        arns = self.ecs.list_tasks(cluster=CLUSTER, serviceName=SERVICE)["taskArns"]
        if not arns:
            return []
        return self.ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"]

    def health(self):
        return self.elb.describe_target_health(TargetGroupArn=self.tg)["TargetHealthDescriptions"]

    def healthy_targets(self):
        return [h for h in self.health() if h["TargetHealth"]["State"] == "healthy"]

    def url(self):
        ls = self.cloud.listeners()
        assert len(ls) == 1, ls
        return ls[0]["url"]

    def wait_stable(self, timeout=90):
        self.ecs.get_waiter("services_stable").wait(
            cluster=CLUSTER, services=[SERVICE], WaiterConfig={"Delay": 1, "MaxAttempts": timeout})


class Hammer(threading.Thread):
    """Steady requests through the listener; records every failure."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url, self.ok, self.failures, self.versions = url, 0, [], []
        self.halt = threading.Event()

    def run(self):
        s = requests.Session()
        while not self.halt.is_set():
            try:
                r = s.get(self.url, timeout=5)
                if r.status_code == 200:
                    self.ok += 1
                    self.versions.append(r.json()["version"])
                else:
                    self.failures.append(r.status_code)
            except requests.RequestException as exc:
                self.failures.append(repr(exc))
            time.sleep(0.02)


def test_service_lifecycle(cloud):
    st = Stack(cloud).build()

    # --- initial deployment: 2 tasks RUNNING, 2 healthy targets, API truth
    wait_until(lambda: len(st.healthy_targets()) == 2, 60, "2 healthy targets", step=POLL)
    st.wait_stable()
    svc = st.service()
    assert svc["runningCount"] == 2 and svc["pendingCount"] == 0
    assert len(svc["deployments"]) == 1 and svc["deployments"][0]["rolloutState"] == "COMPLETED"
    conf = svc["deploymentConfiguration"]
    assert conf["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert (conf["minimumHealthyPercent"], conf["maximumPercent"]) == (100, 200)
    assert svc["healthCheckGracePeriodSeconds"] == 0
    assert any("has reached a steady state." in e["message"] for e in svc["events"])
    tasks = st.running_tasks()
    assert len(tasks) == 2
    for t in tasks:
        assert t["lastStatus"] == "RUNNING" and t["desiredStatus"] == "RUNNING"
        assert t["group"] == f"service:{SERVICE}" and t["startedBy"] == svc["deployments"][0]["id"]
        assert t["taskDefinitionArn"] == st.td["v1"]
        details = {d["name"]: d["value"] for d in t["attachments"][0]["details"]}
        assert details["privateIPv4Address"] == "127.0.0.1"
        assert len(t["taskArn"].rsplit("/", 1)[1]) == 32
    ports = sorted(h["Target"]["Port"] for h in st.healthy_targets())
    assert ports == sorted(t["containers"][0]["networkBindings"][0]["hostPort"] for t in tasks)

    url = st.url()
    # the listener follows the emulator's target health on its own thread (as ALB's nodes
    # follow a target group): the first routed answer may come a moment after the API's
    wait_until(lambda: requests.get(url, timeout=5).status_code == 200, 10, "the listener routes", step=POLL)
    pids = set()
    for _ in range(20):
        r = requests.get(url, timeout=5)
        assert r.status_code == 200
        body = r.json()
        assert body["version"] == "v1"
        assert body["task"] in {t["taskArn"] for t in tasks}
        pids.add(body["pid"])
    assert len(pids) == 2

    # --- rolling update to v2 under steady traffic: no failed request
    hammer = Hammer(url)
    hammer.start()
    try:
        st.ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=st.td["v2"])
        svc = st.service()
        assert svc["taskDefinition"] == st.td["v2"]
        assert [d["status"] for d in svc["deployments"]] == ["PRIMARY", "ACTIVE"]
        st.wait_stable()
        served = hammer.ok
        wait_until(lambda: hammer.ok >= served + 20, 30, "20 more answers after the rollout", step=POLL)
    finally:
        hammer.halt.set()
        hammer.join()
    assert hammer.failures == [] and hammer.ok > 20
    svc = st.service()
    assert len(svc["deployments"]) == 1
    assert svc["deployments"][0]["rolloutState"] == "COMPLETED"
    assert svc["deployments"][0]["taskDefinition"] == st.td["v2"]
    assert {requests.get(url, timeout=5).json()["version"] for _ in range(10)} == {"v2"}
    stopped = st.ecs.list_tasks(cluster=CLUSTER, serviceName=SERVICE, desiredStatus="STOPPED")["taskArns"]
    assert len(stopped) == 2

    # --- a bad revision: the circuit breaker trips and rolls back to v2
    st.ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=st.td["bad"])
    failed = wait_until(lambda: [d for d in st.service()["deployments"] if d.get("rolloutState") == "FAILED"],
                        120, "the circuit breaker", step=POLL)
    assert failed[0]["taskDefinition"] == st.td["bad"] and failed[0]["failedTasks"] >= 3
    assert st.service()["taskDefinition"] == st.td["v2"]
    st.wait_stable(120)
    svc = st.service()
    assert svc["taskDefinition"] == st.td["v2"]
    assert svc["deployments"][0]["rolloutState"] == "COMPLETED"
    messages = [e["message"] for e in svc["events"]]
    assert any("deployment failed: tasks failed to start." in m for m in messages)
    assert {requests.get(url, timeout=5).json()["version"] for _ in range(10)} == {"v2"}
    bad_stopped = [t for t in st.ecs.describe_tasks(
        cluster=CLUSTER, tasks=st.ecs.list_tasks(cluster=CLUSTER, desiredStatus="STOPPED")["taskArns"])["tasks"]
        if t["taskDefinitionArn"] == st.td["bad"]]
    assert bad_stopped and any("failed ELB health checks" in (t.get("stoppedReason") or "") for t in bad_stopped)

    # --- kill -9 one task: replaced, registered and healthy; the URL keeps answering
    victim = requests.get(url, timeout=5).json()
    os.kill(victim["pid"], signal.SIGKILL)
    wait_until(lambda: len(st.healthy_targets()) == 2 and victim["task"] not in
               {t["taskArn"] for t in st.running_tasks()}, 2 * HC_INTERVAL + 20, "a healthy replacement", step=POLL)
    for _ in range(10):
        assert requests.get(url, timeout=5).status_code == 200
    dead = st.ecs.describe_tasks(cluster=CLUSTER, tasks=[victim["task"]])["tasks"][0]
    assert dead["stoppedReason"] == "Essential container in task exited"
    assert dead["containers"][0]["exitCode"] == 137

    # --- logs through the Logs API, stream <prefix>/<container>/<task id>
    task_id = st.running_tasks()[0]["taskArn"].rsplit("/", 1)[1]
    stream = f"web/app/{task_id}"

    def logged():
        try:
            ev = st.logs.get_log_events(logGroupName="/ecs/demo", logStreamName=stream)["events"]
        except st.logs.exceptions.ResourceNotFoundException:
            return None
        return [e["message"] for e in ev]

    lines = wait_until(logged, 10, "log events", step=POLL)
    assert any("demo v2 listening" in m for m in lines)
    found = st.logs.filter_log_events(logGroupName="/ecs/demo", filterPattern="listening")["events"]
    assert len(found) >= 6
