resource "aws_ecs_cluster" "this" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = var.container_insights
  }

  tags = var.tags
}

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_158:Logs are encrypted at rest by CloudWatch with AWS-owned keys; the app logs no secrets, so a customer-managed KMS key is not needed.
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days

  tags = var.tags
}

resource "aws_ecs_task_definition" "this" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = tostring(var.cpu)
  memory                   = tostring(var.memory)
  execution_role_arn       = var.execution_role_arn
  task_role_arn            = var.task_role_arn

  # Rollouts register their own revisions of this family (see ship); when
  # Terraform replaces its revision, the older ones stay registered so that a
  # rollback target is never deregistered behind the rollout tool's back.
  skip_destroy = true

  container_definitions = jsonencode([
    {
      name      = var.container_name
      image     = var.image
      essential = true
      memory    = var.memory
      portMappings = [
        {
          containerPort = var.container_port
          hostPort      = var.container_port
          protocol      = "tcp"
        }
      ]
      environment = [
        for key in sort(keys(var.environment_variables)) : {
          name  = key
          value = var.environment_variables[key]
        }
      ]
      stopTimeout = var.stop_timeout
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.this.name
          awslogs-region        = var.aws_region
          awslogs-stream-prefix = var.container_name
        }
      }
    }
  ])

  tags = var.tags

  lifecycle {
    # The rollout tool marks revisions that reached a steady deployment with a
    # tag (its rollback history); Terraform leaves those marks alone.
    ignore_changes = [tags, tags_all]
  }
}

resource "aws_ecs_service" "this" {
  name            = var.name
  cluster         = aws_ecs_cluster.this.arn
  task_definition = aws_ecs_task_definition.this.arn
  desired_count   = var.desired_count
  launch_type     = "FARGATE"

  # Rolling deployment: start new tasks before stopping old ones, roll back a
  # deployment whose tasks keep failing.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  health_check_grace_period_seconds = var.health_check_grace_period

  load_balancer {
    target_group_arn = var.target_group_arn
    container_name   = var.container_name
    container_port   = var.container_port
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = var.security_group_ids
    assign_public_ip = var.assign_public_ip
  }

  propagate_tags         = "SERVICE"
  enable_execute_command = false
  wait_for_steady_state  = false

  tags = var.tags

  lifecycle {
    # Image rollouts register new task definition revisions outside Terraform.
    # desired_count is set at creation only, as terraform-aws-modules/ecs does
    # ("Always ignored"): with Service Auto Scaling on, the scaler owns the count
    # and every plan would otherwise undo its last scale-out (hashicorp/aws 5.x
    # has no computed desired_count). The deploy sets the count instead: the
    # environment's desired_count when autoscaling is off, the current count
    # clamped into min/max when it is on (ship.capacity; see README.md).
    ignore_changes = [task_definition, desired_count]
  }

  # A target group can only be attached to a service once a listener joins it
  # to the load balancer.
  depends_on = [var.listener_arns]
}

# -- Service Auto Scaling (off when var.autoscaling is null) -------------------
# A scalable target on the service's DesiredCount and one target tracking policy
# per metric given: ECSServiceAverageCPUUtilization, ECSServiceAverageMemoryUtilization,
# ALBRequestCountPerTarget (requests per target per minute; needs alb_resource_label).
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-autoscaling-targettracking.html

locals {
  scaling_metrics = var.autoscaling == null ? {} : {
    for name, policy in {
      cpu      = { type = "ECSServiceAverageCPUUtilization", target = var.autoscaling.cpu_target, label = null }
      memory   = { type = "ECSServiceAverageMemoryUtilization", target = var.autoscaling.memory_target, label = null }
      requests = { type = "ALBRequestCountPerTarget", target = var.autoscaling.requests_per_target, label = var.alb_resource_label }
    } : name => policy if policy.target != null
  }
}

resource "aws_appautoscaling_target" "this" {
  count = var.autoscaling == null ? 0 : 1

  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.this.name}"
  min_capacity       = var.autoscaling.min_capacity
  max_capacity       = var.autoscaling.max_capacity

  tags = var.tags
}

resource "aws_appautoscaling_policy" "this" {
  for_each = local.scaling_metrics

  name               = "${var.name}-${each.key}"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this[0].service_namespace
  scalable_dimension = aws_appautoscaling_target.this[0].scalable_dimension
  resource_id        = aws_appautoscaling_target.this[0].resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = each.value.target
    scale_in_cooldown  = var.autoscaling.scale_in_cooldown
    scale_out_cooldown = var.autoscaling.scale_out_cooldown

    predefined_metric_specification {
      predefined_metric_type = each.value.type
      resource_label         = each.value.label
    }
  }
}
