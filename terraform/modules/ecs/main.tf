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
    ignore_changes = [task_definition]
  }

  # A target group can only be attached to a service once a listener joins it
  # to the load balancer.
  depends_on = [var.listener_arns]
}
