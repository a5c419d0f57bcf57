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
