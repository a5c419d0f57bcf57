# Test-only root: listener rules on the shared e2e stack's load balancer, as a
# user of the modules would add them (tests/e2e/test_listener_rules.py applies
# and destroys it; the stack itself is left as it was).
terraform {
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
}

# Credentials and endpoint (AWS_ENDPOINT_URL) come from the environment.
provider "aws" {
  region = "us-east-1"

  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
}

variable "load_balancer_name" {
  type        = string
  description = "Name of the stack's load balancer."
}

variable "target_ports" {
  type        = map(number)
  description = "Local ports of the test's two targets, by group (a, b)."
}

variable "fixed_body" {
  type        = string
  description = "Body of the fixed-response rule."
  default     = "rules-test fixed"
}

data "aws_lb" "this" {
  name = var.load_balancer_name
}

data "aws_lb_listener" "http" {
  load_balancer_arn = data.aws_lb.this.arn
  port              = 80
}

resource "aws_lb_target_group" "this" {
  for_each = var.target_ports

  name        = "rules-test-${each.key}"
  vpc_id      = data.aws_lb.this.vpc_id
  target_type = "ip"
  protocol    = "HTTP"
  port        = 80

  health_check {
    path                = "/health"
    interval            = 5
    timeout             = 2
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }
}

resource "aws_lb_target_group_attachment" "this" {
  for_each = var.target_ports

  target_group_arn = aws_lb_target_group.this[each.key].arn
  target_id        = "127.0.0.1"
  port             = each.value
}

resource "aws_lb_listener_rule" "fixed" {
  listener_arn = data.aws_lb_listener.http.arn
  priority     = 10

  action {
    type = "fixed-response"

    fixed_response {
      content_type = "text/plain"
      message_body = var.fixed_body
      status_code  = "418"
    }
  }

  condition {
    path_pattern {
      values = ["/rules-test/fixed"]
    }
  }
}

resource "aws_lb_listener_rule" "redirect" {
  listener_arn = data.aws_lb_listener.http.arn
  priority     = 20

  action {
    type = "redirect"

    redirect {
      path        = "/rules-test/landing"
      query       = "from=#{path}"
      status_code = "HTTP_302"
    }
  }

  condition {
    path_pattern {
      values = ["/rules-test/old/*"]
    }
  }
}

resource "aws_lb_listener_rule" "host" {
  listener_arn = data.aws_lb_listener.http.arn
  priority     = 30

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this["a"].arn
  }

  condition {
    host_header {
      values = ["a.rules.test"]
    }
  }
}

resource "aws_lb_listener_rule" "weighted" {
  listener_arn = data.aws_lb_listener.http.arn
  priority     = 40

  action {
    type = "forward"

    forward {
      target_group {
        arn    = aws_lb_target_group.this["a"].arn
        weight = 1
      }

      target_group {
        arn    = aws_lb_target_group.this["b"].arn
        weight = 1
      }

      stickiness {
        enabled  = true
        duration = 600
      }
    }
  }

  condition {
    path_pattern {
      values = ["/rules-test/weighted*"]
    }
  }
}

resource "aws_lb_listener_rule" "path" {
  listener_arn = data.aws_lb_listener.http.arn
  priority     = 50

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this["b"].arn
  }

  condition {
    path_pattern {
      values = ["/rules-test/b/*"]
    }
  }

  condition {
    http_request_method {
      values = ["GET"]
    }
  }
}

output "fixed_rule_arn" {
  description = "ARN of the fixed-response rule (the test changes it through the API)."
  value       = aws_lb_listener_rule.fixed.arn
}

output "target_group_arns" {
  description = "ARNs of the test's target groups, by group."
  value       = { for k, tg in aws_lb_target_group.this : k => tg.arn }
}
