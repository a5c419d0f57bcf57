# modules/loadbalancer: HTTP forwarding, or HTTPS forwarding plus the HTTP redirect.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  name               = "hello-test"
  vpc_id             = "vpc-0123456789abcdef0"
  subnet_ids         = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
  security_group_ids = ["sg-0123456789abcdef0"]
  container_port     = 5000
}

run "without_a_certificate_http_forwards" {
  command = plan

  module {
    source = "./modules/loadbalancer"
  }

  assert {
    condition     = length(aws_lb_listener.http) == 1 && length(aws_lb_listener.https) == 0 && length(aws_lb_listener.http_redirect) == 0
    error_message = "no certificate: one HTTP listener"
  }
  assert {
    condition     = aws_lb_listener.http[0].default_action[0].type == "forward"
    error_message = "the HTTP listener forwards to the target group"
  }
  assert {
    condition     = output.url == "http://hello-test-123.us-east-1.elb.amazonaws.com" && output.https_enabled == false
    error_message = "the URL is http://"
  }
  assert {
    condition     = aws_lb_target_group.this.health_check[0].path == "/health" && aws_lb_target_group.this.target_type == "ip"
    error_message = "Fargate targets are IPs, health-checked on /health"
  }
}

run "with_a_certificate_https_forwards_and_http_redirects" {
  command = plan

  module {
    source = "./modules/loadbalancer"
  }

  variables {
    certificate_arn = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
  }

  assert {
    condition     = length(aws_lb_listener.http) == 0 && length(aws_lb_listener.https) == 1 && length(aws_lb_listener.http_redirect) == 1
    error_message = "a certificate: HTTPS listener plus HTTP redirect, no plain forwarding"
  }
  assert {
    condition     = aws_lb_listener.https[0].port == 443 && aws_lb_listener.https[0].ssl_policy == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    error_message = "HTTPS on 443 with a TLS 1.2+ policy"
  }
  assert {
    condition     = aws_lb_listener.http_redirect[0].default_action[0].redirect[0].status_code == "HTTP_301" && aws_lb_listener.http_redirect[0].default_action[0].redirect[0].protocol == "HTTPS"
    error_message = "HTTP answers a permanent redirect to HTTPS"
  }
  assert {
    condition     = output.url == "https://hello-test-123.us-east-1.elb.amazonaws.com" && length(output.listener_arns) == 2
    error_message = "the URL is https:// and both listeners are reported"
  }
}

run "a_name_longer_than_32_characters_is_refused" {
  command = plan

  module {
    source = "./modules/loadbalancer"
  }

  variables {
    name = "hello-a-name-that-is-far-too-long-for-elb"
  }

  expect_failures = [var.name]
}

run "a_health_check_path_without_a_slash_is_refused" {
  command = plan

  module {
    source = "./modules/loadbalancer"
  }

  variables {
    health_check_path = "health"
  }

  expect_failures = [var.health_check_path]
}
