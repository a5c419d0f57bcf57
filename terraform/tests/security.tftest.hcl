# modules/security: which ports the ALB opens, to whom; the task admits only the ALB.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  name           = "hello-test"
  vpc_id         = "vpc-0123456789abcdef0"
  container_port = 5000
}

run "http_only_opens_port_80" {
  command = plan

  module {
    source = "./modules/security"
  }

  variables {
    alb_ingress_cidrs = ["0.0.0.0/0", "192.0.2.0/24"]
  }

  assert {
    condition     = sort([for r in aws_security_group_rule.alb_ingress : "${r.from_port}/${r.cidr_blocks[0]}"]) == tolist(["80/0.0.0.0/0", "80/192.0.2.0/24"])
    error_message = "without HTTPS, one rule per CIDR on port 80 only"
  }
  assert {
    condition     = aws_security_group_rule.alb_to_task.from_port == 5000 && aws_security_group_rule.alb_to_task.to_port == 5000
    error_message = "the task admits the container port only"
  }
}

run "https_also_opens_port_443" {
  command = plan

  module {
    source = "./modules/security"
  }

  variables {
    https_enabled = true
  }

  assert {
    condition     = sort([for r in aws_security_group_rule.alb_ingress : tostring(r.from_port)]) == tolist(["443", "80"])
    error_message = "with HTTPS, ports 80 (redirect) and 443"
  }
}

run "ipv6_ingress_cidrs_are_refused" {
  command = plan

  module {
    source = "./modules/security"
  }

  variables {
    alb_ingress_cidrs = ["::/0"]
  }

  expect_failures = [var.alb_ingress_cidrs]
}

run "a_port_out_of_range_is_refused" {
  command = plan

  module {
    source = "./modules/security"
  }

  variables {
    container_port = 70000
  }

  expect_failures = [var.container_port]
}
