locals {
  alb_ports = var.https_enabled ? [80, 443] : [80]

  # One rule per (port, CIDR): the VPC rule resources take a single CIDR each.
  alb_ingress = {
    for pair in setproduct(local.alb_ports, var.alb_ingress_cidrs) :
    "${pair[0]}-${pair[1]}" => { port = pair[0], cidr = pair[1] }
  }
}

resource "aws_security_group" "alb" {
  #checkov:skip=CKV2_AWS_5:Attached in another module (loadbalancer, via alb_security_group_id); checkov does not follow module outputs.
  name        = "${var.name}-alb"
  description = "Load balancer of ${var.name}: HTTP(S) in from the allowed CIDRs, out to the tasks only"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-alb" })
}

resource "aws_security_group" "task" {
  #checkov:skip=CKV2_AWS_5:Attached in another module (ecs service, via task_security_group_id); checkov does not follow module outputs.
  name        = "${var.name}-task"
  description = "ECS tasks of ${var.name}: container port in from the load balancer only"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-task" })
}

# Rules are aws_security_group_rule resources (not the newer
# aws_vpc_security_group_*_rule): they read back identically from AWS and from
# the local emulator, so a second plan is empty on both.
resource "aws_security_group_rule" "alb_ingress" {
  for_each = local.alb_ingress

  type              = "ingress"
  security_group_id = aws_security_group.alb.id
  description       = "${each.value.port == 443 ? "HTTPS" : "HTTP"} from ${each.value.cidr}"
  protocol          = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_blocks       = [each.value.cidr]
}

resource "aws_security_group_rule" "alb_to_task" {
  type                     = "egress"
  security_group_id        = aws_security_group.alb.id
  description              = "To the tasks on the container port"
  protocol                 = "tcp"
  from_port                = var.container_port
  to_port                  = var.container_port
  source_security_group_id = aws_security_group.task.id
}

resource "aws_security_group_rule" "task_from_alb" {
  type                     = "ingress"
  security_group_id        = aws_security_group.task.id
  description              = "Container port from the load balancer"
  protocol                 = "tcp"
  from_port                = var.container_port
  to_port                  = var.container_port
  source_security_group_id = aws_security_group.alb.id
}

resource "aws_security_group_rule" "task_https" {
  for_each = toset(var.task_egress_cidrs)

  type              = "egress"
  security_group_id = aws_security_group.task.id
  description       = "HTTPS to ${each.value} (ECR, CloudWatch Logs, AWS APIs)"
  protocol          = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_blocks       = [each.value]
}
