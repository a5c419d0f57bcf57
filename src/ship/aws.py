"""AWS clients: the one place that decides where an environment's AWS calls go.

Emulator environments get clients from ``localstack-client`` pointed at the
local endpoint, with dummy credentials, so nothing can reach a real account.
AWS environments get boto3's normal session and credential chain, and no
local endpoint leaks into them (the same holds for Terraform's environment,
``terraform_env``). Other modules branch on ``Environment.emulator`` for what
differs beyond the API: starting the local cloud and its state (stack,
recover, actions.up, actions.infra, actions.dev), the kind of image to build and
how it is pushed (images, container_image), Terraform's backend and variables
(terraform), the service's URL (queries); none of them builds a client or picks
credentials itself.

The wrappers below are thin: one method per AWS call, errors re-raised as
``AwsError`` carrying what was being done ("describe service hello-local: ...").
"""

from __future__ import annotations

import ipaddress
import os
import threading
from functools import cached_property
from typing import Any
from urllib.parse import urlparse

import boto3
import botocore.config
import botocore.exceptions

from ship.config import Environment
from ship.errors import ShipError

DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
_BOTO_CONFIG = botocore.config.Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5,
                                      read_timeout=60)


class AwsError(ShipError):
    """An AWS call failed; the message says which call and why."""

    def __init__(self, doing: str, err: Exception):
        self.code = getattr(err, "response", {}).get("Error", {}).get("Code", "") if hasattr(err, "response") else ""
        detail = str(err)
        if isinstance(err, botocore.exceptions.ClientError):
            e = err.response.get("Error", {})
            detail = f"{e.get('Code', 'Error')}: {e.get('Message', '')}"
            meta = err.response.get("ResponseMetadata", {})
            headers = meta.get("HTTPHeaders", {})
            if "html" in headers.get("content-type", "") or str(e.get("Message", "")).lstrip().startswith("<"):
                server = f" from {headers['server']}" if headers.get("server") else ""
                detail = (f"the endpoint answered HTTP {meta.get('HTTPStatusCode', '?')} with a web page{server}, "
                          "not an AWS API response: is the endpoint right (for local environments, "
                          "`inv local.status`)?")
        super().__init__(f"{doing}: {detail}")


def is_loopback_url(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_local_endpoint(env: Environment) -> str:
    """The emulator endpoint, refusing anything that could be real AWS."""
    url = env.endpoint_url
    if not url:
        raise ShipError(f"environment {env.name!r} is not an emulator environment")
    allow_remote = os.environ.get("SHIP_ALLOW_REMOTE_EMULATOR") == "1"
    if not is_loopback_url(url) and not allow_remote:
        raise ShipError(f"refusing to use {url} for {env.name!r}: emulator environments only talk to loopback "
                        "addresses; set SHIP_ALLOW_REMOTE_EMULATOR=1 if that host really is an emulator")
    if "amazonaws.com" in url:
        raise ShipError(f"refusing to use {url} for {env.name!r}: that is real AWS, not an emulator")
    return url


def terraform_env(env: Environment, base: dict | None = None) -> dict:
    """Process environment for Terraform (and anything else that reads AWS_* variables)."""
    result = dict(os.environ if base is None else base)
    if env.emulator:
        url = check_local_endpoint(env)
        for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"):
            result.pop(key, None)
        result.update(DUMMY_CREDENTIALS)
        result.update({"AWS_ENDPOINT_URL": url, "AWS_REGION": env.region, "AWS_DEFAULT_REGION": env.region,
                       "AWS_EC2_METADATA_DISABLED": "true"})
    else:
        # Nothing local may leak into a real deployment.
        endpoint = result.get("AWS_ENDPOINT_URL", "")
        if endpoint and is_loopback_url(endpoint):
            result.pop("AWS_ENDPOINT_URL")
        if result.get("AWS_ACCESS_KEY_ID") == DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"]:
            result.pop("AWS_ACCESS_KEY_ID", None)
            result.pop("AWS_SECRET_ACCESS_KEY", None)
        result.setdefault("AWS_REGION", env.region)
    return result


def _refuse_foreign_program(url: str, port: int) -> None:
    """One line, not its HTML, when something other than the local cloud holds the emulator's port."""
    from ship.localcloud import control

    if control.identify(url) == "foreign":
        raise ShipError(f"{url} answers, but it is not the local cloud{control.describe_port(port)}: stop that "
                        "program, or move the local cloud to another port with SHIP_LOCAL_PORT")


NO_CREDENTIALS = ("configure them (`aws configure`, AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; "
                  "in CI the GitHub OIDC role) and retry")


def _aws_session(env: Environment) -> boto3.Session:
    """boto3's normal session and credential chain, refusing early (one line) when it finds nothing."""
    try:
        session = boto3.Session(region_name=env.region)
        credentials = session.get_credentials()
    except botocore.exceptions.BotoCoreError as err:  # e.g. AWS_PROFILE names a missing profile
        raise ShipError(f"AWS credentials for {env.name}: {err}; {NO_CREDENTIALS}") from None
    if credentials is None:
        raise ShipError(f"no AWS credentials found for {env.name} (an AWS environment): {NO_CREDENTIALS}")
    return session


def check_credentials(env: Environment) -> None:
    """For an AWS environment: ShipError (one line) when boto3's credential chain finds nothing."""
    if not env.emulator:
        _aws_session(env)


class Session:
    """boto3 clients for one environment: one per command, built where the command starts and
    passed down. Its clients may be used from several threads (boto3's clients are thread-safe;
    creating them from one boto3 session is not, so that happens under a lock)."""

    def __init__(self, env: Environment):
        self.env = env
        self._lock = threading.Lock()
        if env.emulator:
            import localstack_client.session

            url = urlparse(check_local_endpoint(env))
            if not os.environ.get("SHIP_LOCAL_ENDPOINT"):
                _refuse_foreign_program(url.geturl(), url.port or 80)
            self._session = localstack_client.session.Session(
                aws_access_key_id="test", aws_secret_access_key="test", aws_session_token=None,
                region_name=env.region, localstack_host=f"{url.hostname}:{url.port or 80}",
            )
        else:
            self._session = _aws_session(env)

    def client(self, service: str):
        with self._lock:
            return self._session.client(service, config=_BOTO_CONFIG)

    @cached_property
    def ecs(self) -> "Ecs":
        return Ecs(self.client("ecs"))

    @cached_property
    def ecr(self) -> "Ecr":
        return Ecr(self.client("ecr"))

    @cached_property
    def elbv2(self) -> "Elbv2":
        return Elbv2(self.client("elbv2"))

    @cached_property
    def logs(self) -> "Logs":
        return Logs(self.client("logs"))

    @cached_property
    def s3(self):
        return self.client("s3")

    @cached_property
    def sts(self):
        return self.client("sts")

    def account_id(self) -> str:
        try:
            return self.sts.get_caller_identity()["Account"]
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as err:
            raise AwsError(f"who am I ({self.env.name})", err) from None


def _call(doing: str, fn, **kwargs):
    try:
        return fn(**kwargs)
    except botocore.exceptions.EndpointConnectionError as err:
        raise ShipError(f"{doing}: cannot reach {err.kwargs.get('endpoint_url', 'the endpoint')}; "
                        "for local environments start the local cloud (inv local.up)") from None
    except botocore.exceptions.NoCredentialsError:
        raise ShipError(f"{doing}: no AWS credentials found; {NO_CREDENTIALS}") from None
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as err:
        raise AwsError(doing, err) from None


class Ecs:
    def __init__(self, client):
        self.client = client

    def describe_service(self, cluster: str, service: str) -> dict | None:
        resp = _call(f"describe service {service}", self.client.describe_services, cluster=cluster,
                     services=[service])
        for svc in resp.get("services", []):
            if svc.get("status") != "INACTIVE":
                return svc
        return None

    def describe_task_definition(self, arn: str) -> dict:
        resp = _call(f"describe task definition {arn}", self.client.describe_task_definition,
                     taskDefinition=arn, include=["TAGS"])
        return resp

    def register_task_definition(self, **kwargs) -> dict:
        resp = _call(f"register task definition {kwargs.get('family')}", self.client.register_task_definition,
                     **kwargs)
        return resp["taskDefinition"]

    def deregister_task_definition(self, arn: str) -> dict:
        return _call(f"deregister task definition {arn}", self.client.deregister_task_definition,
                     taskDefinition=arn)["taskDefinition"]

    def list_task_definitions(self, family: str, status: str = "ACTIVE") -> list[str]:
        arns, token = [], None
        while True:
            kwargs = {"familyPrefix": family, "status": status, "sort": "ASC"}
            if token:
                kwargs["nextToken"] = token
            resp = _call(f"list task definitions {family}", self.client.list_task_definitions, **kwargs)
            arns += [a for a in resp.get("taskDefinitionArns", []) if a.rsplit("/", 1)[-1].split(":")[0] == family]
            token = resp.get("nextToken")
            if not token:
                return arns

    def update_service(self, cluster: str, service: str, **kwargs) -> dict:
        return _call(f"update service {service}", self.client.update_service, cluster=cluster, service=service,
                     **kwargs)["service"]

    def list_tasks(self, cluster: str, service: str, desired_status: str = "RUNNING") -> list[str]:
        resp = _call(f"list tasks of {service}", self.client.list_tasks, cluster=cluster, serviceName=service,
                     desiredStatus=desired_status)
        return resp.get("taskArns", [])

    def describe_tasks(self, cluster: str, arns: list[str]) -> list[dict]:
        tasks = []
        for i in range(0, len(arns), 100):
            resp = _call(f"describe tasks in {cluster}", self.client.describe_tasks, cluster=cluster,
                         tasks=arns[i:i + 100])
            tasks += resp.get("tasks", [])
        return tasks

    def run_task(self, cluster: str, **kwargs) -> dict:
        return _call(f"run task {kwargs.get('taskDefinition', '')} in {cluster}", self.client.run_task,
                     cluster=cluster, **kwargs)

    def stop_task(self, cluster: str, task: str, reason: str) -> dict:
        return _call(f"stop task {task.rsplit('/', 1)[-1]}", self.client.stop_task, cluster=cluster, task=task,
                     reason=reason)["task"]


class Ecr:
    def __init__(self, client):
        self.client = client

    def describe_images(self, repo: str, image_ids: list[dict] | None = None) -> list[dict]:
        kwargs: dict[str, Any] = {"repositoryName": repo}
        if image_ids:
            kwargs["imageIds"] = image_ids
        images, token = [], None
        while True:
            if token:
                kwargs["nextToken"] = token
            resp = _call(f"describe images in {repo}", self.client.describe_images, **kwargs)
            images += resp.get("imageDetails", [])
            token = resp.get("nextToken")
            if not token:
                return images

    def batch_get_image(self, repo: str, image_id: dict) -> dict | None:
        resp = _call(f"get image {image_id} from {repo}", self.client.batch_get_image, repositoryName=repo,
                     imageIds=[image_id], acceptedMediaTypes=[
                         "application/vnd.oci.image.manifest.v1+json",
                         "application/vnd.docker.distribution.manifest.v2+json"])
        images = resp.get("images", [])
        return images[0] if images else None

    def put_image(self, repo: str, manifest: str, media_type: str, tag: str, digest: str | None = None) -> dict:
        kwargs = {"repositoryName": repo, "imageManifest": manifest, "imageManifestMediaType": media_type,
                  "imageTag": tag}
        if digest:
            kwargs["imageDigest"] = digest
        return _call(f"put image {repo}:{tag}", self.client.put_image, **kwargs)["image"]

    def describe_repository(self, repo: str) -> dict | None:
        try:
            resp = self.client.describe_repositories(repositoryNames=[repo])
        except botocore.exceptions.ClientError as err:
            if err.response["Error"]["Code"] == "RepositoryNotFoundException":
                return None
            raise AwsError(f"describe repository {repo}", err) from None
        except botocore.exceptions.BotoCoreError as err:
            raise AwsError(f"describe repository {repo}", err) from None
        return resp["repositories"][0]

    def layer_availability(self, repo: str, digests: list[str]) -> set[str]:
        resp = _call(f"check layers in {repo}", self.client.batch_check_layer_availability, repositoryName=repo,
                     layerDigests=digests)
        return {x["layerDigest"] for x in resp.get("layers", []) if x.get("layerAvailability") == "AVAILABLE"}

    def upload_blob(self, repo: str, data: bytes, part_size: int = 10 * 1024 * 1024) -> str:
        up = _call(f"start layer upload to {repo}", self.client.initiate_layer_upload, repositoryName=repo)
        upload_id = up["uploadId"]
        part_size = min(part_size, up.get("partSize") or part_size)
        for first in range(0, max(len(data), 1), part_size):
            chunk = data[first:first + part_size]
            _call(f"upload layer part to {repo}", self.client.upload_layer_part, repositoryName=repo,
                  uploadId=upload_id, partFirstByte=first, partLastByte=first + len(chunk) - 1,
                  layerPartBlob=chunk)
        from ship.oci import sha256_digest

        digest = sha256_digest(data)
        done = _call(f"complete layer upload to {repo}", self.client.complete_layer_upload, repositoryName=repo,
                     uploadId=upload_id, layerDigests=[digest])
        if done["layerDigest"] != digest:
            raise ShipError(f"registry stored layer {done['layerDigest']} but {digest} was sent; upload corrupted")
        return digest

    def download_blob(self, repo: str, digest: str) -> bytes:
        url = _call(f"locate blob {digest[:19]} in {repo}", self.client.get_download_url_for_layer,
                    repositoryName=repo, layerDigest=digest)["downloadUrl"]
        import urllib.request

        try:
            with urllib.request.urlopen(url, timeout=60) as resp:
                data = resp.read()
        except OSError as err:
            raise ShipError(f"download blob {digest[:19]} from {repo}: {err}") from None
        from ship.oci import sha256_digest

        if sha256_digest(data) != digest:
            raise ShipError(f"download blob {digest[:19]} from {repo}: content does not match its digest")
        return data

    def authorization(self) -> dict:
        return _call("get registry login", self.client.get_authorization_token)["authorizationData"][0]


class Elbv2:
    def __init__(self, client):
        self.client = client

    def target_health(self, target_group_arn: str) -> list[dict]:
        return _call(f"describe target health of {target_group_arn.rsplit('/', 2)[-2]}",
                     self.client.describe_target_health, TargetGroupArn=target_group_arn)["TargetHealthDescriptions"]

    def describe_target_group(self, arn: str) -> dict:
        return _call("describe target group", self.client.describe_target_groups, TargetGroupArns=[arn])[
            "TargetGroups"][0]

    def describe_load_balancers(self, arns: list[str]) -> list[dict]:
        return _call("describe load balancers", self.client.describe_load_balancers, LoadBalancerArns=arns)[
            "LoadBalancers"]

    def describe_listeners(self, lb_arn: str) -> list[dict]:
        return _call("describe listeners", self.client.describe_listeners, LoadBalancerArn=lb_arn)["Listeners"]


class Logs:
    def __init__(self, client):
        self.client = client

    def stream_events(self, group: str, stream: str, token: str | None = None) -> dict:
        """GetLogEvents from the head of ``stream`` (or from ``token``); {} while the stream does not exist."""
        kwargs = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
        if token:
            kwargs["nextToken"] = token
        try:
            return self.client.get_log_events(**kwargs)
        except botocore.exceptions.ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return {}
            raise AwsError(f"read log stream {stream}", err) from None
        except botocore.exceptions.BotoCoreError as err:
            raise AwsError(f"read log stream {stream}", err) from None

    def filter_events(self, group: str, start_ms: int | None = None, token: str | None = None,
                      prefix: str | None = None, pattern: str | None = None) -> dict:
        kwargs = {"logGroupName": group, "interleaved": True}
        if pattern:
            kwargs["filterPattern"] = pattern
        if start_ms is not None:
            kwargs["startTime"] = start_ms
        if token:
            kwargs["nextToken"] = token
        if prefix:
            kwargs["logStreamNamePrefix"] = prefix
        return _call(f"read log group {group}", self.client.filter_log_events, **kwargs)
