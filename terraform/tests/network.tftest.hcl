# modules/network: subnets carved from the VPC CIDR, the optional NAT gateway, validations.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  name     = "hello-test"
  vpc_cidr = "10.20.0.0/16"
}

run "without_nat_tasks_run_in_public_subnets" {
  command = plan

  module {
    source = "./modules/network"
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 0 && length(aws_eip.nat) == 0 && length(aws_route.private_nat) == 0
    error_message = "nat_gateway = false creates no NAT gateway, no EIP and no private default route"
  }
  assert {
    condition     = output.assign_public_ip == true
    error_message = "without NAT, tasks need a public IP to pull images"
  }
  assert {
    condition     = output.availability_zones == tolist(["us-east-1a", "us-east-1b"])
    error_message = "no zones given: the region's a and b zones"
  }
  assert {
    condition     = [for s in aws_subnet.public : s.cidr_block] == ["10.20.0.0/24", "10.20.1.0/24"]
    error_message = "public subnets are the VPC's first /24s"
  }
  assert {
    condition     = [for s in aws_subnet.private : s.cidr_block] == ["10.20.8.0/24", "10.20.9.0/24"]
    error_message = "private subnets start at the ninth /24"
  }
}

run "with_nat_tasks_run_in_private_subnets" {
  command = plan

  module {
    source = "./modules/network"
  }

  variables {
    nat_gateway        = true
    availability_zones = ["us-east-1a", "us-east-1b", "us-east-1c"]
  }

  override_data {
    target = data.aws_availability_zones.this
    values = {
      names = ["us-east-1a", "us-east-1b", "us-east-1c"]
    }
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 1 && length(aws_eip.nat) == 1 && length(aws_route.private_nat) == 1
    error_message = "nat_gateway = true creates one NAT gateway with its EIP and the private default route"
  }
  assert {
    condition     = aws_route.private_nat[0].destination_cidr_block == "0.0.0.0/0"
    error_message = "the private route table sends everything else to the NAT gateway"
  }
  assert {
    condition     = output.assign_public_ip == false
    error_message = "behind a NAT gateway, tasks get no public IP"
  }
  assert {
    condition     = length(aws_subnet.public) == 3 && length(aws_subnet.private) == 3
    error_message = "one public and one private subnet per zone"
  }
}

run "a_vpc_larger_than_a_16_is_refused" {
  command = plan

  module {
    source = "./modules/network"
  }

  variables {
    vpc_cidr = "10.0.0.0/8"
  }

  expect_failures = [var.vpc_cidr]
}

run "a_vpc_cidr_that_is_not_one_is_refused" {
  command = plan

  module {
    source = "./modules/network"
  }

  variables {
    vpc_cidr = "10.20.0.0"
  }

  expect_failures = [var.vpc_cidr]
}

run "a_zone_the_region_does_not_have_fails_the_plan" {
  command = plan

  module {
    source = "./modules/network"
  }

  variables {
    availability_zones = ["us-east-1a", "us-east-1x"]
  }

  override_data {
    target = data.aws_availability_zones.this
    values = {
      names = ["us-east-1a"]
    }
  }

  expect_failures = [data.aws_availability_zones.this]
}

run "one_zone_is_refused" {
  command = plan

  module {
    source = "./modules/network"
  }

  variables {
    availability_zones = ["us-east-1a"]
  }

  expect_failures = [var.availability_zones]
}
