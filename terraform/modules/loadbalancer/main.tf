locals {
  https_enabled = var.certificate_arn != ""
}

resource "aws_lb" "this" {
  #checkov:skip=CKV_AWS_150:Deletion protection is an input (enable_deletion_protection); off by default so that environments, emulator ones above all, can be destroyed.
  #checkov:skip=CKV_AWS_91:No access-log bucket yet: request logs come from the app (gunicorn access log in CloudWatch Logs).
  #checkov:skip=CKV2_AWS_28:No WAF: a small public demo app; a WAF web ACL costs per month and per rule and can be associated later without changing this module.
  #checkov:skip=CKV2_AWS_20:HTTP redirects to HTTPS only when a certificate ARN is given (listener http_redirect); environments without a certificate serve plain HTTP.
  name               = var.name
  internal           = false
  load_balancer_type = "application"
  subnets            = var.subnet_ids
  security_groups    = var.security_group_ids

  drop_invalid_header_fields = true
  enable_deletion_protection = var.enable_deletion_protection
  idle_timeout               = var.idle_timeout

  tags = var.tags
}

resource "aws_lb_target_group" "this" {
  #checkov:skip=CKV_AWS_378:TLS ends at the load balancer; the container serves plain HTTP to the ALB inside the VPC, where the task security group admits only the ALB.
  name                 = var.name
  vpc_id               = var.vpc_id
  target_type          = "ip"
  protocol             = "HTTP"
  port                 = var.container_port
  deregistration_delay = var.deregistration_delay

  health_check {
    enabled             = true
    protocol            = "HTTP"
    port                = "traffic-port"
    path                = var.health_check_path
    interval            = var.health_check_interval
    timeout             = var.health_check_timeout
    healthy_threshold   = var.healthy_threshold
    unhealthy_threshold = var.unhealthy_threshold
    matcher             = var.health_check_matcher
  }

  tags = var.tags
}

# Without a certificate: plain HTTP on 80 forwards to the targets.
resource "aws_lb_listener" "http" {
  #checkov:skip=CKV_AWS_2:Only created when no certificate ARN is given (no domain/ACM certificate yet, and the emulator has none); with a certificate, HTTPS listener plus redirect are used instead.
  #checkov:skip=CKV_AWS_103:Plain HTTP listener, TLS does not apply; the HTTPS listener uses a TLS 1.2+ policy (ELBSecurityPolicy-TLS13-1-2-2021-06).
  count = local.https_enabled ? 0 : 1

  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }

  tags = var.tags
}

# With a certificate: HTTP on 80 redirects to HTTPS on 443, which forwards.
resource "aws_lb_listener" "http_redirect" {
  count = local.https_enabled ? 1 : 0

  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"

    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }

  tags = var.tags
}

resource "aws_lb_listener" "https" {
  count = local.https_enabled ? 1 : 0

  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = var.ssl_policy
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }

  tags = var.tags
}
