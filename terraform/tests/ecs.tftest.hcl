# modules/ecs: the container definition, the rolling deployment with circuit breaker,
# the service that leaves task definitions to the rollout tool, validations.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  name               = "hello-test"
  container_name     = "hello"
  image              = "123456789012.dkr.ecr.us-east-1.amazonaws.com/hello-test:abc"
  container_port     = 5000
  aws_region         = "us-east-1"
  execution_role_arn = "arn:aws:iam::123456789012:role/hello-test-execution"
  task_role_arn      = "arn:aws:iam::123456789012:role/hello-test-task"
  subnet_ids         = ["subnet-0123456789abcdef0"]
  security_group_ids = ["sg-0123456789abcdef0"]
  target_group_arn   = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/hello-test/0123456789abcdef"
  listener_arns      = []
}

run "the_container_definition_follows_the_inputs" {
  command = plan

  module {
    source = "./modules/ecs"
  }

  variables {
    environment_variables = { B = "2", A = "1" }
  }

  assert {
    condition     = jsondecode(aws_ecs_task_definition.this.container_definitions)[0].image == var.image
    error_message = "the first revision runs var.image"
  }
  assert {
    condition     = jsondecode(aws_ecs_task_definition.this.container_definitions)[0].environment == [{ name = "A", value = "1" }, { name = "B", value = "2" }]
    error_message = "environment variables are sorted by name (a stable diff)"
  }
  assert {
    condition     = jsondecode(aws_ecs_task_definition.this.container_definitions)[0].logConfiguration.options["awslogs-group"] == "/ecs/hello-test"
    error_message = "logs go to /ecs/<name>"
  }
  assert {
    condition     = aws_ecs_task_definition.this.cpu == "256" && aws_ecs_task_definition.this.memory == "512"
    error_message = "the smallest Fargate size by default"
  }
}

run "deployments_roll_and_roll_back" {
  command = plan

  module {
    source = "./modules/ecs"
  }

  assert {
    condition     = aws_ecs_service.this.deployment_minimum_healthy_percent == 100 && aws_ecs_service.this.deployment_maximum_percent == 200
    error_message = "new tasks start before old ones stop"
  }
  assert {
    condition     = aws_ecs_service.this.deployment_circuit_breaker[0].enable && aws_ecs_service.this.deployment_circuit_breaker[0].rollback
    error_message = "the circuit breaker rolls failing deployments back"
  }
  assert {
    condition     = aws_ecs_service.this.desired_count == 2 && aws_ecs_service.this.launch_type == "FARGATE"
    error_message = "two Fargate tasks by default"
  }
}

run "a_cpu_size_fargate_does_not_have_is_refused" {
  command = plan

  module {
    source = "./modules/ecs"
  }

  variables {
    cpu = 300
  }

  expect_failures = [var.cpu]
}

run "a_log_retention_cloudwatch_refuses_is_refused" {
  command = plan

  module {
    source = "./modules/ecs"
  }

  variables {
    log_retention_days = 10
  }

  expect_failures = [var.log_retention_days]
}

run "a_stop_timeout_above_fargates_limit_is_refused" {
  command = plan

  module {
    source = "./modules/ecs"
  }

  variables {
    stop_timeout = 121
  }

  expect_failures = [var.stop_timeout]
}

# -- Service Auto Scaling ---------------------------------------------------------

run "autoscaling_is_off_by_default" {
  command = plan

  module {
    source = "./modules/ecs"
  }

  assert {
    condition     = length(aws_appautoscaling_target.this) == 0 && length(aws_appautoscaling_policy.this) == 0
    error_message = "no scalable target and no policy without var.autoscaling"
  }
}

run "autoscaling_makes_a_target_and_one_policy_per_metric" {
  command = plan

  module {
    source = "./modules/ecs"
  }

  variables {
    alb_resource_label = "app/hello-test/0123456789abcdef/targetgroup/hello-test/0123456789abcdef"
    autoscaling = {
      min_capacity        = 2
      max_capacity        = 6
      cpu_target          = 70
      memory_target       = 80
      requests_per_target = 600
      scale_in_cooldown   = 120
    }
  }

  assert {
    condition = (aws_appautoscaling_target.this[0].resource_id == "service/hello-test/hello-test"
      && aws_appautoscaling_target.this[0].scalable_dimension == "ecs:service:DesiredCount"
    && aws_appautoscaling_target.this[0].min_capacity == 2 && aws_appautoscaling_target.this[0].max_capacity == 6)
    error_message = "the scalable target is the service's DesiredCount within min/max"
  }
  assert {
    condition     = toset(keys(aws_appautoscaling_policy.this)) == toset(["cpu", "memory", "requests"])
    error_message = "one policy per metric given"
  }
  assert {
    condition = (aws_appautoscaling_policy.this["cpu"].target_tracking_scaling_policy_configuration[0].predefined_metric_specification[0].predefined_metric_type == "ECSServiceAverageCPUUtilization"
    && aws_appautoscaling_policy.this["memory"].target_tracking_scaling_policy_configuration[0].predefined_metric_specification[0].predefined_metric_type == "ECSServiceAverageMemoryUtilization")
    error_message = "CPU and memory policies track the service averages"
  }
  assert {
    condition = (aws_appautoscaling_policy.this["requests"].target_tracking_scaling_policy_configuration[0].predefined_metric_specification[0].predefined_metric_type == "ALBRequestCountPerTarget"
      && aws_appautoscaling_policy.this["requests"].target_tracking_scaling_policy_configuration[0].predefined_metric_specification[0].resource_label == var.alb_resource_label
    && aws_appautoscaling_policy.this["requests"].target_tracking_scaling_policy_configuration[0].target_value == 600)
    error_message = "the request count policy names the load balancer and target group"
  }
  assert {
    condition = (aws_appautoscaling_policy.this["cpu"].policy_type == "TargetTrackingScaling"
      && aws_appautoscaling_policy.this["cpu"].target_tracking_scaling_policy_configuration[0].scale_in_cooldown == 120
    && aws_appautoscaling_policy.this["cpu"].target_tracking_scaling_policy_configuration[0].scale_out_cooldown == 300)
    error_message = "cooldowns as given, else AWS's default of 300 s"
  }
}

run "autoscaling_with_only_a_cpu_target_has_one_policy" {
  command = plan

  module {
    source = "./modules/ecs"
  }

  variables {
    autoscaling = { min_capacity = 1, max_capacity = 3, cpu_target = 60 }
  }

  assert {
    condition     = keys(aws_appautoscaling_policy.this) == ["cpu"]
    error_message = "metrics without a target get no policy (and need no resource label)"
  }
}

run "autoscaling_min_above_max_is_refused" {
  command = plan

  module {
    source = "./modules/ecs"
  }

  variables {
    autoscaling = { min_capacity = 5, max_capacity = 3, cpu_target = 60 }
  }

  expect_failures = [var.autoscaling]
}

run "a_desired_count_outside_min_and_max_is_refused" {
  command = plan

  module {
    source = "./modules/ecs"
  }

  variables {
    desired_count = 8
    autoscaling   = { min_capacity = 1, max_capacity = 4, cpu_target = 60 }
  }

  expect_failures = [var.autoscaling]
}

run "autoscaling_without_a_target_is_refused" {
  command = plan

  module {
    source = "./modules/ecs"
  }

  variables {
    autoscaling = { min_capacity = 1, max_capacity = 4 }
  }

  expect_failures = [var.autoscaling]
}

run "a_request_count_policy_without_a_resource_label_is_refused" {
  command = plan

  module {
    source = "./modules/ecs"
  }

  variables {
    autoscaling = { min_capacity = 1, max_capacity = 4, requests_per_target = 100 }
  }

  expect_failures = [var.autoscaling]
}

run "a_cpu_target_above_100_percent_is_refused" {
  command = plan

  module {
    source = "./modules/ecs"
  }

  variables {
    autoscaling = { min_capacity = 1, max_capacity = 4, cpu_target = 150 }
  }

  expect_failures = [var.autoscaling]
}
