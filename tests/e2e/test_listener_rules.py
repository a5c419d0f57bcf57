"""Listener rules through Terraform on the shared stack's load balancer: fixed response,
redirect, host and path conditions, weighted forwarding with stickiness, a rule changed
through the ELBv2 API, and the load balancer by name on the emulator's port.

The rules and two extra target groups (served by small HTTP servers of this test) come
from a test-only Terraform root (tests/e2e/listener_rules/), applied and destroyed here;
the stack is left as it was found.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from helpers import wait_until
from ship import terraform

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("deployed")]

ROOT = Path(__file__).parent / "listener_rules"
LB_NAME = "hello-local"


class GroupServer:
    """A target of one test target group: answers with its group's name (and 200 on /health)."""

    def __init__(self, group: str):
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                body = json.dumps({"group": group, "path": self.path}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Rules:
    def __init__(self, stack, work: Path, ports: dict):
        self.stack, self.work, self.ports = stack, work, ports
        self.env = dict(os.environ, AWS_ENDPOINT_URL=f"http://127.0.0.1:{stack.port}", AWS_ACCESS_KEY_ID="test",
                        AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1", TF_IN_AUTOMATION="1",
                        TF_INPUT="0")
        config = stack.env.get("TF_CLI_CONFIG_FILE") or terraform.cli_config(work)  # the stack's (conftest.py)
        if config:
            self.env["TF_CLI_CONFIG_FILE"] = str(config)
        self.applied = False
        self.outputs: dict = {}

    def tf(self, *args: str) -> str:
        result = subprocess.run([terraform.binary(), *args], cwd=self.work, env=self.env, capture_output=True,
                                text=True, timeout=600)
        assert result.returncode == 0, f"terraform {' '.join(args)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        return result.stdout

    def variables(self) -> list:
        return ["-var", f"load_balancer_name={LB_NAME}", "-var", f"target_ports={json.dumps(self.ports)}"]

    def apply(self) -> None:
        self.tf("init", "-input=false", "-no-color")
        self.tf("apply", "-auto-approve", "-input=false", "-no-color", *self.variables())
        self.applied = True
        self.outputs = {k: v["value"] for k, v in json.loads(self.tf("output", "-json")).items()}

    def destroy(self) -> None:
        if self.applied:
            self.tf("destroy", "-auto-approve", "-input=false", "-no-color", *self.variables())
            self.applied = False


@pytest.fixture(scope="module")
def rules_once(deployed, tmp_path_factory):
    """The rules applied once for the module (and destroyed at its end)."""
    servers = {g: GroupServer(g) for g in ("a", "b")}
    work = tmp_path_factory.mktemp("listener-rules")
    shutil.copy(ROOT / "main.tf", work / "main.tf")
    r = Rules(deployed, work, {g: s.port for g, s in servers.items()})
    try:
        r.apply()
        yield r
    finally:
        try:
            r.destroy()  # already done by the last test when everything went well
        finally:
            for s in servers.values():
                s.close()


@pytest.fixture
def rules(rules_once):
    """The rules in place, whichever test ran before (the destroy test removes them)."""
    if not rules_once.applied:
        rules_once.apply()
    return rules_once


def request(stack, path: str, method: str = "GET", headers: dict | None = None, port: int | None = None):
    """(status, headers, body) through the stack's load balancer URL, redirects not followed."""
    c = http.client.HTTPConnection("127.0.0.1", port or int(stack.url.rsplit(":", 1)[1]), timeout=10)
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        h = {k.lower(): v for k, v in r.getheaders()}
        h["set-cookie"] = r.msg.get_all("Set-Cookie") or []
        return r.status, h, r.read()
    finally:
        c.close()


def group(body: bytes) -> str | None:
    try:
        return json.loads(body).get("group")
    except ValueError:
        return None


def test_fixed_response_rule(stack, rules):
    status, headers, body = request(stack, "/rules-test/fixed")
    assert (status, headers["content-type"], body) == (418, "text/plain", b"rules-test fixed")
    assert headers["server"] == "awselb/2.0"


def test_redirect_rule(stack, rules):
    status, headers, _ = request(stack, "/rules-test/old/page?x=1")
    port = stack.url.rsplit(":", 1)[1]
    assert status == 302
    assert headers["location"] == f"http://127.0.0.1:{port}/rules-test/landing?from=rules-test/old/page"


def test_host_header_rule(stack, rules):
    assert group(request(stack, "/", headers={"Host": "a.rules.test"})[2]) == "a"
    status, _, body = request(stack, "/")
    assert status == 200 and "version" in json.loads(body)  # other hosts: the default action, the app


def test_path_and_method_rule(stack, rules):
    assert group(request(stack, "/rules-test/b/x")[2]) == "b"
    assert group(request(stack, "/rules-test/b/x", method="POST")[2]) is None  # not GET: the app (405)


def test_weighted_forward_with_group_stickiness(stack, rules):
    seen = [group(request(stack, f"/rules-test/weighted/{i}")[2]) for i in range(60)]
    assert set(seen) == {"a", "b"}  # weights 1:1; all 60 on one side would have odds of 2^-59
    _, headers, body = request(stack, "/rules-test/weighted")
    cookie = [c.split(";")[0] for c in headers["set-cookie"] if c.startswith("AWSALBTG=")]
    assert cookie, headers["set-cookie"]
    stuck = {group(request(stack, "/rules-test/weighted", headers={"Cookie": cookie[0]})[2]) for _ in range(10)}
    assert stuck == {group(body)}


def test_rule_changed_through_the_api_takes_effect(stack, rules):
    elbv2, arn = stack.client("elbv2"), rules.outputs["fixed_rule_arn"]
    [original] = elbv2.describe_rules(RuleArns=[arn])["Rules"]
    elbv2.modify_rule(RuleArn=arn, Actions=[{"Type": "fixed-response",
                      "FixedResponseConfig": {"StatusCode": "200", "ContentType": "text/plain",
                                              "MessageBody": "changed"}}])
    try:
        wait_until(lambda: request(stack, "/rules-test/fixed")[2] == b"changed", 10,
                   "the rule change to reach the listener", step=0.2)
        assert request(stack, "/rules-test/fixed")[0] == 200
    finally:  # the rule as Terraform made it, for the other tests
        elbv2.modify_rule(RuleArn=arn, Actions=original["Actions"])
        wait_until(lambda: request(stack, "/rules-test/fixed")[2] == b"rules-test fixed", 10,
                   "the original rule back on the listener", step=0.2)


def test_load_balancer_by_name_on_the_emulator_port(stack, rules):
    status, _, body = request(stack, "/rules-test/b/by-name", port=stack.port,
                              headers={"Host": f"{LB_NAME}.elb.localhost:{stack.port}"})
    assert status == 200 and group(body) == "b"


def test_destroy_leaves_the_stack_as_it_was(stack, rules):
    rules.destroy()
    elbv2 = stack.client("elbv2")
    lb = elbv2.describe_load_balancers(Names=[LB_NAME])["LoadBalancers"][0]
    listener = [x for x in elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
                if x["Port"] == 80][0]
    assert [r["IsDefault"] for r in elbv2.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]] == [True]
    # the app's answer again, within a sync tick
    wait_until(lambda: request(stack, "/rules-test/fixed")[0] == 404, 10, "the app behind the path again", step=0.2)
    assert all(request(stack, "/")[0] == 200 for _ in range(4))
