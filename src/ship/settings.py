"""Every key of terraform/environments.yaml, in one table, and the checks that read it.

To add a key: one line in ``SETTINGS`` (its type and the rule AWS documents for
it), its default under ``defaults`` in environments.yaml, and its use in
Terraform (``local.settings.<key>``). A rule that spans keys goes in
``RELATIONS``. Everything here is pure: it takes parsed YAML and returns
``Problem``s (line + message), so all mistakes are reported together.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Callable

import yaml

from ship.yamlfile import Document

DEFAULT_LOCAL_CEILING = 10  # replicas per emulator environment (SHIP_LOCAL_MAX_DESIRED_COUNT)


@dataclass(frozen=True)
class Problem:
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


# -- value rules: each returns None (fine) or what is wrong ---------------------

def between(low: int, high: int) -> Callable:
    return lambda v: None if low <= v <= high else f"must be between {low} and {high}, got {v}"


def at_least(low: int) -> Callable:
    return lambda v: None if v >= low else f"must be at least {low}, got {v}"


def one_of(values, what: str) -> Callable:
    shown = ", ".join(str(v) for v in values)
    return lambda v: None if v in values else f"must be {what} ({shown}), got {v!r}"


def matches(regex: str, what: str) -> Callable:
    compiled = re.compile(regex)
    return lambda v: None if compiled.fullmatch(v) else f"must be {what}, got {v!r}"


def _cidr(value: str) -> ipaddress.IPv4Network | None:
    try:
        net = ipaddress.ip_network(value)
    except ValueError:
        return None
    return net if isinstance(net, ipaddress.IPv4Network) else None


def vpc_cidr(value: str) -> str | None:
    # AWS: a VPC's IPv4 block is /16 to /28; the network module carves /24 subnets
    # at indexes 0-1 and 8-9, so the block must hold at least 16 of them (/20).
    net = _cidr(value)
    if net is None:
        return f"must be an IPv4 CIDR block such as 10.20.0.0/16, got {value!r}"
    if not 16 <= net.prefixlen <= 20:
        return f"must be a /16 to /20 block (AWS allows /16 to /28; the subnets need a /20), got /{net.prefixlen}"
    return None


def cidr_list(value) -> str | None:
    if not isinstance(value, list) or not all(isinstance(v, str) and _cidr(v) for v in value):
        return f"must be a list of IPv4 CIDR blocks such as [\"0.0.0.0/0\"], got {value!r}"
    return None


def status_matcher(value) -> str | None:
    # ELB: HTTP codes 200-499 for an ALB target group, "200", "200,202" or "200-299".
    for part in str(value).split(","):
        low, _, high = part.strip().partition("-")
        if not (low.isdigit() and (not high or high.isdigit())):
            return f"must be HTTP codes such as \"200\", \"200,202\" or \"200-299\", got {value!r}"
        low_i, high_i = int(low), int(high or low)
        if not 200 <= low_i <= high_i <= 499:
            return f"codes must be between 200 and 499 (ALB target groups), got {value!r}"
    return None


def variables(value) -> str | None:
    if not isinstance(value, dict):
        return f"must be a mapping of NAME: value, got {value!r}"
    for name, val in value.items():
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            return f"has {name!r}, which is not an environment variable name"
        if isinstance(val, (dict, list)) or val is None:
            return f"{name} must be a plain value (string, number or boolean), got {val!r}"
    return None


def health_path(value: str) -> str | None:
    # ELB: the ping path starts with "/" and is at most 1024 characters.
    if not value.startswith("/") or len(value) > 1024:
        return f"must start with / and be at most 1024 characters, got {value!r}"
    return None


# -- the table ------------------------------------------------------------------

@dataclass(frozen=True)
class Setting:
    kind: type | tuple  # what YAML must give: str, int, bool, list, dict, or a tuple of them
    rule: Callable | None = None
    doc: str = field(default="", compare=False)


# Fargate task sizes, from the ECS Developer Guide ("Task CPU and memory",
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size):
# cpu units -> the memory values (MiB) Fargate accepts with it.
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}
# CloudWatch Logs PutRetentionPolicy: the values retentionInDays accepts.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
                      2922, 3288, 3653)

SETTINGS: dict[str, Setting] = {
    "app_name": Setting(str, matches(r"[a-z][a-z0-9-]*", "lower-case letters, digits and hyphens")),
    "aws_region": Setting(str, matches(r"[a-z]{2}(-[a-z]+)+-\d+", "an AWS region code such as us-east-1")),
    "emulator": Setting(bool, doc="true: lives on the local cloud"),
    "state_bucket": Setting(str),
    "vpc_cidr": Setting(str, vpc_cidr),
    "nat_gateway": Setting(bool),
    "alb_ingress_cidrs": Setting(list, cidr_list),
    "certificate_arn": Setting(str, matches(r"|arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[A-Za-z0-9-]+",
                                            "empty or an ACM certificate ARN")),
    "container_port": Setting(int, between(1, 65535)),
    "cpu": Setting(int, one_of(tuple(FARGATE_SIZES), "a Fargate CPU size")),
    "memory": Setting(int, between(512, 122880)),  # and a pair with cpu: RELATIONS
    "desired_count": Setting(int, between(1, 5000)),  # ECS: at most 5000 tasks per service
    "health_check_path": Setting(str, health_path),
    "health_check_interval": Setting(int, between(5, 300)),  # ELB HealthCheckIntervalSeconds
    "health_check_timeout": Setting(int, between(2, 120)),  # ELB HealthCheckTimeoutSeconds
    "healthy_threshold": Setting(int, between(2, 10)),  # ELB HealthyThresholdCount
    "unhealthy_threshold": Setting(int, between(2, 10)),  # ELB UnhealthyThresholdCount
    "health_check_matcher": Setting((str, int), status_matcher),
    "deregistration_delay": Setting(int, between(0, 3600)),  # ELB deregistration_delay.timeout_seconds
    "health_check_grace_period": Setting(int, between(0, 2147483647)),  # ECS healthCheckGracePeriodSeconds
    "log_retention_days": Setting(int, one_of(LOG_RETENTION_DAYS, "a CloudWatch Logs retention")),
    "ecr_keep_images": Setting(int, at_least(1)),  # ECR lifecycle rule countNumber
    "task_definitions_to_keep": Setting(int, at_least(1)),
    "environment_variables": Setting(dict, variables),
    # Service Auto Scaling (Application Auto Scaling target tracking); the relations are in RELATIONS
    "autoscaling": Setting(bool, doc="true: a scalable target and target tracking policies"),
    "autoscaling_min_capacity": Setting(int, between(0, 5000)),
    "autoscaling_max_capacity": Setting(int, between(1, 5000)),
    "autoscaling_cpu_target": Setting(int, between(0, 100)),  # percent; 0: no CPU policy
    "autoscaling_memory_target": Setting(int, between(0, 100)),  # percent; 0: no memory policy
    "autoscaling_requests_per_target": Setting(int, at_least(0)),  # per target per minute; 0: no such policy
    "autoscaling_scale_in_cooldown": Setting(int, between(0, 86400)),  # seconds
    "autoscaling_scale_out_cooldown": Setting(int, between(0, 86400)),  # seconds
}

_KIND_NAMES = {str: "a string", int: "an integer", bool: "true or false", list: "a list", dict: "a mapping"}


def check_value(key: str, value) -> str | None:
    """What is wrong with ``value`` for ``key`` (type, then the key's rule), or None."""
    setting = SETTINGS[key]
    kinds = setting.kind if isinstance(setting.kind, tuple) else (setting.kind,)
    is_bool = isinstance(value, bool)
    if not any(isinstance(value, k) and (k is bool or not is_bool) for k in kinds):
        return f"must be {' or '.join(_KIND_NAMES[k] for k in kinds)}, got {value!r}"
    return setting.rule(value) if setting.rule else None


# -- reading the file -------------------------------------------------------------

@dataclass
class Parsed:
    """Settings as written: ``{key: (value, line)}`` for defaults and each environment."""

    defaults: dict = field(default_factory=dict)
    environments: dict = field(default_factory=dict)  # name -> {key: (value, line)}
    env_lines: dict = field(default_factory=dict)  # name -> line
    problems: list = field(default_factory=list)

    def merged(self, name: str) -> dict:
        return {k: v for k, (v, _) in {**self.defaults, **self.environments[name]}.items()}

    def where(self, name: str, key: str) -> int | None:
        """The line that gives ``name`` its ``key`` (its own, else the default's)."""
        own = self.environments[name].get(key) or self.defaults.get(key)
        return own[1] if own else self.env_lines.get(name)


def _unknown(key, place: str) -> str:
    guess = difflib.get_close_matches(str(key), SETTINGS, n=1, cutoff=0.6)
    hint = f" (did you mean {guess[0]!r}?)" if guess else f"; known keys: {', '.join(SETTINGS)}"
    if key == "<<":
        hint = " (YAML merge keys are not supported: settings merge with defaults by themselves)"
    return f"unknown key {key!r} in {place}{hint}"


def _settings(doc: Document, node, place: str, parsed: Parsed) -> dict:
    if node is None or (not doc.is_mapping(node) and doc.value(node) is None):
        return {}
    if not doc.is_mapping(node):
        parsed.problems.append(Problem(doc.line(node), f"{place} must be a mapping of settings"))
        return {}
    out = {}
    for entry in doc.entries(node):
        if entry.key not in SETTINGS:
            parsed.problems.append(Problem(entry.line, _unknown(entry.key, place)))
            continue
        wrong = check_value(entry.key, entry.value)
        if wrong:
            parsed.problems.append(Problem(entry.line, f"{place}.{entry.key} {wrong}"))
        out[entry.key] = (entry.value, entry.line)
    return out


def parse(doc: Document) -> Parsed:
    """Walk the document: top level, defaults, environments; per-value problems included."""
    parsed = Parsed()
    for path, key, first, again in doc.duplicates():
        if path == ("environments",):
            parsed.problems.append(Problem(again, f"environment {key!r} is defined twice (lines {first} and {again})"))
        else:
            where = ".".join(path) or "the top level"
            parsed.problems.append(Problem(again, f"{key!r} is set twice in {where} (lines {first} and {again}); "
                                                  "YAML would silently keep the last"))
    root = doc.root
    if not isinstance(root, yaml.MappingNode):
        parsed.problems.append(Problem(None, "the file must be a mapping with 'defaults' and 'environments'"))
        return parsed
    for entry in doc.entries(root):
        if entry.key == "defaults":
            parsed.defaults = _settings(doc, entry.node, "defaults", parsed)
        elif entry.key == "environments":
            _environments(doc, entry, parsed)
        else:
            guess = difflib.get_close_matches(str(entry.key), ["defaults", "environments"], n=1, cutoff=0.6)
            hint = f" (did you mean {guess[0]!r}?)" if guess else "; only 'defaults' and 'environments' belong there"
            parsed.problems.append(Problem(entry.line, f"unknown top-level key {entry.key!r}{hint}"))
    if not parsed.environments:
        parsed.problems.append(Problem(None, "there must be an 'environments' mapping with at least one environment"))
    return parsed


def _environments(doc: Document, entry, parsed: Parsed) -> None:
    if not doc.is_mapping(entry.node):
        parsed.problems.append(Problem(entry.line, "'environments' must be a mapping of environment names"))
        return
    for env in doc.entries(entry.node):
        name = str(env.key)
        if not re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", name):
            parsed.problems.append(Problem(env.line, f"environment name {name!r} must be lower-case letters, "
                                                     "digits and hyphens"))
        parsed.env_lines.setdefault(name, env.line)
        parsed.environments[name] = _settings(doc, env.node, name, parsed)


# -- rules across keys, per environment --------------------------------------------

def _fargate_pair(name: str, s: dict, ceiling: int) -> list[tuple[str, str]]:
    cpu, memory = s.get("cpu"), s.get("memory")
    if cpu in FARGATE_SIZES and isinstance(memory, int) and memory not in FARGATE_SIZES[cpu]:
        allowed = FARGATE_SIZES[cpu]
        shown = ", ".join(map(str, allowed)) if len(allowed) <= 4 else f"{allowed[0]} to {allowed[-1]} " \
            f"in steps of {allowed[1] - allowed[0]}"
        return [("memory", f"{name}: Fargate has no task with cpu {cpu} and memory {memory}; with cpu {cpu} "
                           f"memory must be {shown} (MiB)")]
    return []


def _timeout_below_interval(name: str, s: dict, ceiling: int) -> list[tuple[str, str]]:
    interval, timeout = s.get("health_check_interval"), s.get("health_check_timeout")
    if isinstance(interval, int) and isinstance(timeout, int) and timeout >= interval:
        return [("health_check_timeout", f"{name}: health_check_timeout ({timeout}) must be less than "
                                         f"health_check_interval ({interval}), as ELB requires")]
    return []


def _name_length(name: str, s: dict, ceiling: int) -> list[tuple[str, str]]:
    app = s.get("app_name")
    if isinstance(app, str) and len(f"{app}-{name}") > 32:
        return [("app_name", f"{name}: the resource name {app}-{name!s} is longer than 32 characters, the limit "
                             "of load balancer and target group names")]
    return []


def _local_ceiling(name: str, s: dict, ceiling: int) -> list[tuple[str, str]]:
    count = s.get("desired_count")
    if s.get("emulator") is True and isinstance(count, int) and count > ceiling:
        return [("desired_count", f"{name}: desired_count {count} would start {count} replicas on this machine; "
                                  f"emulator environments allow at most {ceiling} "
                                  "(SHIP_LOCAL_MAX_DESIRED_COUNT raises it)")]
    return []


def _scaling(name: str, s: dict, ceiling: int) -> list[tuple[str, str]]:
    """With autoscaling on: min <= desired_count <= max, at least one policy, max within the local ceiling."""
    if s.get("autoscaling") is not True:
        return []
    low, high, count = s.get("autoscaling_min_capacity"), s.get("autoscaling_max_capacity"), s.get("desired_count")
    if not (isinstance(low, int) and isinstance(high, int) and isinstance(count, int)):
        return []                    # a wrong type is reported by the key's own check
    if not low <= count <= high:
        return [("desired_count", f"{name}: with autoscaling, autoscaling_min_capacity <= desired_count <= "
                                  f"autoscaling_max_capacity must hold, got {low} <= {count} <= {high}")]
    targets = ("autoscaling_cpu_target", "autoscaling_memory_target", "autoscaling_requests_per_target")
    if not any(s.get(k) for k in targets):
        return [("autoscaling", f"{name}: autoscaling needs a policy: set autoscaling_cpu_target, "
                                "autoscaling_memory_target or autoscaling_requests_per_target above 0")]
    if s.get("emulator") is True and high > ceiling:
        return [("autoscaling_max_capacity", f"{name}: autoscaling_max_capacity {high} could start {high} replicas "
                                             f"on this machine; emulator environments allow at most {ceiling} "
                                             "(SHIP_LOCAL_MAX_DESIRED_COUNT raises it)")]
    return []


RELATIONS = (_fargate_pair, _timeout_below_interval, _name_length, _local_ceiling, _scaling)


def check_all(parsed: Parsed, ceiling: int = DEFAULT_LOCAL_CEILING) -> list[Problem]:
    """Missing keys and rules across keys, for every environment."""
    problems = []
    for name in parsed.environments:
        merged = parsed.merged(name)
        missing = [k for k in SETTINGS if k not in merged]
        if missing:
            problems.append(Problem(parsed.env_lines.get(name), f"environment {name!r} lacks "
                                    f"{', '.join(repr(k) for k in missing)} (set under defaults or {name})"))
        for relation in RELATIONS:
            for key, message in relation(name, merged, ceiling):
                problems.append(Problem(parsed.where(name, key), message))
    return problems


def check_deployable(name: str, parsed: Parsed) -> list[Problem]:
    """What only matters for the environment about to be used."""
    merged = parsed.merged(name)
    if merged.get("emulator") is False and merged.get("state_bucket") == "":
        return [Problem(parsed.where(name, "state_bucket"),
                        f"environment {name!r} needs a state_bucket (a globally unique S3 bucket name)")]
    return []
