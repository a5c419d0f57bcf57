"""The deploy's summary: the outputs once and true, the floor and the ratio."""

from ship.actions.up import summary_lines, true_outputs
from ship.domain import Service
from ship.progress import Phase, Resource
from ship.registry import ImageRef

TF = {"task_definition_arn": "arn:aws:ecs:us-east-1:1:task-definition/hello-local:1",
      "service_url": "http://hello-local-1.us-east-1.elb.amazonaws.com",
      "listener_arns": ["arn:l1", "arn:l2"], "container_port": 5000}


def test_outputs_name_what_the_service_runs_not_terraforms_first_revision():
    svc = Service({"serviceName": "hello-local",
                   "taskDefinition": "arn:aws:ecs:us-east-1:1:task-definition/hello-local:7"})
    ref = ImageRef("1.dkr.ecr.us-east-1.amazonaws.com", "hello-local", "sha256:" + "a" * 64)
    rows = true_outputs(TF, svc, ref, "http://127.0.0.1:33289")
    assert rows == {
        "task_definition_arn": "arn:aws:ecs:us-east-1:1:task-definition/hello-local:7 (the revision the service runs)",
        "service_url": "http://127.0.0.1:33289 (http://hello-local-1.us-east-1.elb.amazonaws.com)",
        "listener_arns": "arn:l1, arn:l2",
        "container_port": "5000",
        "image": "1.dkr.ecr.us-east-1.amazonaws.com/hello-local@sha256:" + "a" * 64,
    }


def test_on_aws_the_url_is_terraforms_own():
    rows = true_outputs({"service_url": "https://app.example.com"}, None, None, "https://app.example.com")
    assert rows == {"service_url": "https://app.example.com"}


def test_summary_gives_the_floor_and_the_ratio_once():
    floor = [Resource("module.network.aws_vpc.this", "create", 10.0, 20.0),
             Resource("module.loadbalancer.aws_lb.this", "create", 21.0, 81.0)]
    lines = summary_lines("local", "cold", 84.0, [Phase("infrastructure", 2.0, 82.0, "applied")], floor,
                          {"b": "2", "a": "1"})
    assert lines[1] == "local is serving after 84.0s (cold)"
    assert [ln for ln in lines if "floor" in ln] == [
        "  floor: the AWS provider's fixed waits on the critical path: aws_vpc.this 10.0s + aws_lb.this 60.0s = "
        "70.0s; this deploy took 84.0s = 1.20x the floor"]
    assert lines[-3:] == ["outputs:", "  a  1", "  b  2"]


def test_a_deploy_without_provider_waits_has_no_floor_line():
    lines = summary_lines("local", "warm", 6.0, [], [], {})
    assert not [ln for ln in lines if "floor" in ln] and lines[-1] == "outputs:"


def test_summary_sets_terraforms_own_time_beside_the_floor():
    floor = [Resource("module.network.aws_vpc.this", "create", 10.0, 20.0),
             Resource("module.loadbalancer.aws_lb.this", "create", 21.0, 81.0)]
    lines = summary_lines("local", "cold", 84.0, [], floor, {}, [("init", 1.25), ("plan", 3.75)])
    assert [ln for ln in lines if "floor" in ln][1:] == [
        "  and Terraform's own time before it changed anything: init 1.2s + plan 3.8s = 5.0s; with it the floor "
        "is 75.0s, this deploy 1.12x that"]
    one = summary_lines("local", "cold", 84.0, [], floor, {}, [("plan", 4.0)])
    assert "own time before it changed anything: plan 4.0s; with it the floor is 74.0s, this deploy 1.14x that" \
        in one[-2]
    assert not [ln for ln in summary_lines("local", "warm", 6.0, [], [], {}, [("plan", 3.0)]) if "own time" in ln]


def test_terraform_own_time_is_init_and_each_apply_up_to_its_first_change():
    import io

    from ship.actions.up import terraform_own, timing_record
    from ship.progress import Progress, TerraformWatch

    now = [10.0]
    progress = Progress(io.StringIO(), tty=False, clock=lambda: now[0])
    early, full, idle = (TerraformWatch(progress, progress.start(name)) for name in ("early", "full", "idle"))
    now[0] = 13.5
    early("module.network.aws_vpc.this: Creating...")
    now[0] = 14.0
    full("module.ecs.aws_ecs_service.this: Creating...")
    own = terraform_own(1.25, [early, full, idle])
    assert own == [("init", 1.25), ("plan", 3.5), ("plan", 4.0)]        # the idle apply changed nothing
    assert terraform_own(None, [idle]) == []
    floor = [Resource("module.loadbalancer.aws_lb.this", "create", 21.0, 81.004)]
    assert timing_record(floor, own) == {
        "floor": [{"resource": "module.loadbalancer.aws_lb.this", "seconds": 60.0}], "floor_seconds": 60.0,
        "terraform_own": [{"step": "init", "seconds": 1.25}, {"step": "plan", "seconds": 3.5},
                          {"step": "plan", "seconds": 4.0}], "terraform_own_seconds": 8.75}
