# The root module's environment handling, planned against a mocked AWS provider:
# no credentials, no network, no emulator. `terraform test` from terraform/.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/hello@sha256:0000000000000000000000000000000000000000000000000000000000000000"
}

run "unknown_environment_fails_with_the_valid_names" {
  command = plan

  variables {
    environment = "nowhere"
  }

  expect_failures = [var.environment]
}

run "empty_image_fails" {
  command = plan

  variables {
    environment = "staging"
    image       = " "
  }

  expect_failures = [var.image]
}

run "local_is_an_emulator_environment_with_plain_http_and_no_nat" {
  command = plan

  variables {
    environment = "local"
  }

  assert {
    condition     = output.emulator == true && output.environment == "local"
    error_message = "local must be an emulator environment"
  }
  assert {
    condition     = module.network.nat_gateway_id == null && module.network.assign_public_ip
    error_message = "without nat_gateway, tasks run in public subnets with a public IP and no NAT gateway exists"
  }
  assert {
    condition     = module.loadbalancer.https_enabled == false && length(module.loadbalancer.listener_arns) == 1
    error_message = "without a certificate there is exactly one listener (HTTP forwarding)"
  }
  assert {
    condition     = output.service_url == "http://hello-test-123.us-east-1.elb.amazonaws.com"
    error_message = "without a certificate the service URL is http://<alb dns name>"
  }
  assert {
    condition     = output.cluster_name == "hello-local" && output.ecr_repository_name == "hello-local"
    error_message = "every name is <app_name>-<environment>"
  }
}

run "production_has_a_nat_gateway_and_private_task_subnets" {
  command = plan

  variables {
    environment = "production"
  }

  assert {
    condition     = output.emulator == false
    error_message = "production is an AWS environment"
  }
  assert {
    condition     = module.network.assign_public_ip == false
    error_message = "with a NAT gateway, tasks get no public IP"
  }
  assert {
    condition     = length(module.network.task_subnet_ids) == 2
    error_message = "tasks run in one private subnet per zone"
  }
}

run "a_certificate_turns_on_https_and_the_redirect" {
  command = plan

  variables {
    environments_file = "tests/environments.yaml"
    environment       = "secure"
  }

  assert {
    condition     = module.loadbalancer.https_enabled && length(module.loadbalancer.listener_arns) == 2
    error_message = "with a certificate there are two listeners: HTTPS forwarding and the HTTP redirect"
  }
  assert {
    condition     = output.service_url == "https://hello-test-123.us-east-1.elb.amazonaws.com"
    error_message = "with a certificate the service URL is https://"
  }
}

run "an_environment_overrides_whole_keys_of_defaults" {
  command = plan

  variables {
    environments_file = "tests/environments.yaml"
    environment       = "secure"
  }

  assert {
    condition     = output.aws_region == "eu-west-1" && output.container_port == 8080
    error_message = "keys the environment lists replace the defaults"
  }
  assert {
    condition     = output.log_group_name == "/ecs/shop-secure"
    error_message = "keys the environment does not list come from defaults (app_name)"
  }
}

# What a module refuses (a /8 VPC, a CPU size Fargate has not) is tested in that
# module's own file: a root test cannot name a child module's variables.

run "autoscaling_is_off_in_every_environment_of_the_project" {
  command = plan

  variables {
    environment = "local"
  }

  assert {
    condition     = length(module.ecs.autoscaling_policy_arns) == 0
    error_message = "environments.yaml keeps autoscaling off by default"
  }
}

run "autoscaling_on_passes_the_settings_and_the_resource_label" {
  command = plan

  variables {
    environments_file = "tests/environments.yaml"
    environment       = "scaled"
  }

  assert {
    condition     = toset(keys(module.ecs.autoscaling_policy_arns)) == toset(["cpu", "requests"])
    error_message = "a target of 0 (memory) leaves its policy out; cpu (default 70) and requests are in"
  }
}
