"""After an apply that did not finish: find what it left, and on the emulator rebuild.

A Terraform killed mid-apply (SIGKILL, OOM, a closed laptop) leaves resources
it created but never wrote to its state; the next apply then collides ("already
exists") or, for resources without unique names such as VPCs, makes a second
one. ``terraform.Runner.apply`` keeps a journal for the duration of an apply;
when the next command finds it, it compares what exists with what the state
records. On an emulator environment whatever it left is swept away with the
state and its lock, and the stack is applied from scratch (said in one line).
On AWS ship never deletes on a guess: it says what to do.

Everything of an environment is found by the names Terraform gives it
(``<app>-<env>``, the ``local.name`` of terraform/main.tf) and, in EC2, by its
``environment`` tag (terraform/main.tf's default tags).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

import botocore.exceptions

from ship import paths, terraform
from ship.aws import Session
from ship.config import Environment
from ship.errors import ShipError


@dataclass
class Leftover:
    kind: str
    id: str
    delete: Callable[..., object]   # called with no arguments


def _quiet(fn: Callable, *args, **kwargs):
    """Call an emulator API where "not found" is a fine answer."""
    try:
        return fn(*args, **kwargs)
    except botocore.exceptions.ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        if "NotFound" in code or "NoSuch" in code or code == "InvalidParameterException":
            return None
        raise


def _ecs(env: Environment, session: Session) -> list[Leftover]:
    ecs = session.client("ecs")
    name, out = env.prefix, []
    clusters = (_quiet(ecs.describe_clusters, clusters=[name]) or {}).get("clusters", [])
    if any(c.get("status") == "ACTIVE" for c in clusters):
        for svc in (_quiet(ecs.describe_services, cluster=name, services=[name]) or {}).get("services", []):
            if svc.get("status") != "INACTIVE":
                out.append(Leftover("ECS service", svc["serviceArn"], lambda a=svc["serviceArn"]: _quiet(
                    ecs.delete_service, cluster=name, service=a, force=True)))
        out.append(Leftover("ECS cluster", clusters[0]["clusterArn"],
                            lambda: _quiet(ecs.delete_cluster, cluster=name)))
    for arn in ecs.list_task_definitions(familyPrefix=name, status="ACTIVE").get("taskDefinitionArns", []):
        if arn.rsplit("/", 1)[-1].split(":")[0] == name:
            out.append(Leftover("task definition", arn, lambda a=arn: _quiet(
                ecs.deregister_task_definition, taskDefinition=a)))
    return out


def _elb(env: Environment, session: Session) -> list[Leftover]:
    elbv2, name, out = session.client("elbv2"), env.prefix, []
    for lb in (_quiet(elbv2.describe_load_balancers, Names=[name]) or {}).get("LoadBalancers", []):
        for listener in elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"]).get("Listeners", []):
            out.append(Leftover("listener", listener["ListenerArn"], lambda a=listener["ListenerArn"]: _quiet(
                elbv2.delete_listener, ListenerArn=a)))
        out.append(Leftover("load balancer", lb["LoadBalancerArn"], lambda a=lb["LoadBalancerArn"]: _quiet(
            elbv2.delete_load_balancer, LoadBalancerArn=a)))
    for tg in (_quiet(elbv2.describe_target_groups, Names=[name]) or {}).get("TargetGroups", []):
        out.append(Leftover("target group", tg["TargetGroupArn"], lambda a=tg["TargetGroupArn"]: _quiet(
            elbv2.delete_target_group, TargetGroupArn=a)))
    return out


def _named(env: Environment, session: Session) -> list[Leftover]:
    name, out = env.prefix, []
    logs, ecr, iam = session.client("logs"), session.client("ecr"), session.client("iam")
    group = f"/ecs/{name}"
    for g in logs.describe_log_groups(logGroupNamePrefix=group).get("logGroups", []):
        if g["logGroupName"] == group:
            out.append(Leftover("log group", group, lambda: _quiet(logs.delete_log_group, logGroupName=group)))
    if _quiet(ecr.describe_repositories, repositoryNames=[name]):
        out.append(Leftover("ECR repository", name, lambda: _quiet(
            ecr.delete_repository, repositoryName=name, force=True)))
    for role in (f"{name}-execution", f"{name}-task"):
        if _quiet(iam.get_role, RoleName=role):
            out.append(Leftover("IAM role", role, lambda r=role: _delete_role(iam, r)))
    return out


def _delete_role(iam, role: str) -> None:
    for policy in iam.list_attached_role_policies(RoleName=role).get("AttachedPolicies", []):
        _quiet(iam.detach_role_policy, RoleName=role, PolicyArn=policy["PolicyArn"])
    for policy in iam.list_role_policies(RoleName=role).get("PolicyNames", []):
        _quiet(iam.delete_role_policy, RoleName=role, PolicyName=policy)
    _quiet(iam.delete_role, RoleName=role)


def _network(env: Environment, session: Session) -> list[Leftover]:
    ec2, out = session.client("ec2"), []
    tagged = [{"Name": "tag:environment", "Values": [env.name]}, {"Name": "tag:app", "Values": [env["app_name"]]}]
    for vpc in ec2.describe_vpcs(Filters=tagged).get("Vpcs", []):
        vid = vpc["VpcId"]
        in_vpc = [{"Name": "vpc-id", "Values": [vid]}]
        for nat in ec2.describe_nat_gateways(Filters=in_vpc).get("NatGateways", []):
            if nat.get("State") not in ("deleted", "deleting"):
                out.append(Leftover("NAT gateway", nat["NatGatewayId"], lambda i=nat["NatGatewayId"]: _quiet(
                    ec2.delete_nat_gateway, NatGatewayId=i)))
        igws = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vid]}])
        for igw in igws.get("InternetGateways", []):
            gid = igw["InternetGatewayId"]
            out.append(Leftover("internet gateway", gid, lambda i=gid, v=vid: (
                _quiet(ec2.detach_internet_gateway, InternetGatewayId=i, VpcId=v),
                _quiet(ec2.delete_internet_gateway, InternetGatewayId=i))))
        for rt in ec2.describe_route_tables(Filters=in_vpc).get("RouteTables", []):
            if not any(a.get("Main") for a in rt.get("Associations", [])):
                out.append(Leftover("route table", rt["RouteTableId"], lambda t=rt: _delete_route_table(ec2, t)))
        for sn in ec2.describe_subnets(Filters=in_vpc).get("Subnets", []):
            out.append(Leftover("subnet", sn["SubnetId"], lambda i=sn["SubnetId"]: _quiet(
                ec2.delete_subnet, SubnetId=i)))
        groups = [g for g in ec2.describe_security_groups(Filters=in_vpc).get("SecurityGroups", [])
                  if g.get("GroupName") != "default"]
        for sg in groups:
            out.append(Leftover("security group", sg["GroupId"], lambda g=sg, a=groups: _delete_group(ec2, g, a)))
        out.append(Leftover("VPC", vid, lambda v=vid: _quiet(ec2.delete_vpc, VpcId=v)))
    for eip in ec2.describe_addresses(Filters=tagged).get("Addresses", []):
        out.append(Leftover("elastic IP", eip["AllocationId"], lambda i=eip["AllocationId"]: _quiet(
            ec2.release_address, AllocationId=i)))
    return out


def _delete_route_table(ec2, table: dict) -> None:
    for assoc in table.get("Associations", []):
        _quiet(ec2.disassociate_route_table, AssociationId=assoc["RouteTableAssociationId"])
    _quiet(ec2.delete_route_table, RouteTableId=table["RouteTableId"])


def _delete_group(ec2, group: dict, neighbours: list[dict]) -> None:
    # the rules of every group in the VPC go first (they may name each other), then the group
    for g in neighbours:
        if g.get("IpPermissions"):
            _quiet(ec2.revoke_security_group_ingress, GroupId=g["GroupId"], IpPermissions=g["IpPermissions"])
        if g.get("IpPermissionsEgress"):
            _quiet(ec2.revoke_security_group_egress, GroupId=g["GroupId"], IpPermissions=g["IpPermissionsEgress"])
    _quiet(ec2.delete_security_group, GroupId=group["GroupId"])


def inventory(env: Environment, session: Session) -> list[Leftover]:
    """Everything of ``env`` on the emulator, in the order it can be deleted."""
    return _ecs(env, session) + _elb(env, session) + _named(env, session) + _network(env, session)


def state_ids(env: Environment, session: Session) -> set[str]:
    """Every id and ARN that ``env``'s Terraform state records (read from its backend object)."""
    try:
        body = session.s3.get_object(Bucket=env.state_bucket, Key=env.state_key)["Body"].read()
    except botocore.exceptions.ClientError:
        return set()
    ids: set[str] = set()
    for resource in json.loads(body or b"{}").get("resources", []):
        for instance in resource.get("instances", []):
            attrs = instance.get("attributes") or {}
            ids.update(str(attrs[k]) for k in ("id", "arn", "name") if attrs.get(k))
    return ids


def state_lock(env: Environment, session: Session) -> dict | None:
    """The S3 backend's lock object (``<key>.tflock``, use_lockfile) of ``env``, or None."""
    try:
        body = session.s3.get_object(Bucket=env.state_bucket, Key=env.state_key + ".tflock")["Body"].read()
    except botocore.exceptions.ClientError:
        return None
    try:
        info = json.loads(body or b"{}")
    except ValueError:
        return {"ID": "?"}
    return info if isinstance(info, dict) else {"ID": "?"}


def clear_lock(env: Environment, session: Session) -> None:
    """Delete ``env``'s S3-native state lock object (what `terraform force-unlock` does with
    use_lockfile); only for emulator environments, and only for the lock of a run that is over."""
    if not env.emulator:
        raise ShipError(f"refusing to clear the state lock of {env.name} here: use `inv infra.unlock --env={env.name}`")
    _quiet(session.s3.delete_object, Bucket=env.state_bucket, Key=env.state_key + ".tflock")


def sweep(env: Environment, session: Session) -> int:
    """Delete everything of ``env`` on the emulator, then its state and lock; returns how many resources."""
    if not env.emulator:
        raise ShipError(f"refusing to sweep {env.name}: it is not an emulator environment")
    found = inventory(env, session)
    for item in found:
        item.delete()
    for key in (env.state_key, env.state_key + ".tflock"):
        _quiet(session.s3.delete_object, Bucket=env.state_bucket, Key=key)
    return len(found)


def after_unfinished_apply(env: Environment, session: Session, echo=print, dry_run: bool = False) -> None:
    """Before Terraform runs: deal with an apply the journal says did not finish."""
    data_dir = paths.state_dir() / "terraform" / env.name
    journal = terraform.unfinished_apply(data_dir)
    if journal is None:
        return
    live = terraform.live_terraform(data_dir)
    if live:
        raise ShipError(f"a Terraform process (pid {live[0]}) of an earlier command still works on {env.name}: "
                        f"wait for it to finish, or stop it (kill {live[0]}), then run the command again")
    if not env.emulator:
        echo(f"note: the last apply of {env.name} did not finish; if Terraform now says a resource already "
             "exists, bring it into the state with `terraform import` (or delete it), and clear a stale lock with "
             f"`inv infra.unlock --env={env.name}`")
        return
    recorded = state_ids(env, session)
    # task definition revisions are registered by rollouts, outside Terraform, by design
    unrecorded = [x for x in inventory(env, session) if x.id not in recorded and x.kind != "task definition"]
    if not unrecorded:
        if not dry_run:
            terraform.journal_end(data_dir)
        return
    kinds = sorted({x.kind for x in unrecorded})
    if dry_run:
        echo(f"dry run: the last apply of {env.name} did not finish and left {len(unrecorded)} resources its "
             f"state does not record ({', '.join(kinds)}); a real run rebuilds the stack")
        return
    lock = state_lock(env, session)
    removed = sweep(env, session)
    terraform.journal_end(data_dir)
    echo(f"the last apply of {env.name} did not finish and left {len(unrecorded)} resources its state does not "
         f"record ({', '.join(kinds)}): removed the partial stack ({removed} resources"
         + (f", state lock {lock.get('ID', '?')}" if lock else "") + ") to build it again from scratch")
