output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "cluster_arn" {
  description = "ARN of the ECS cluster."
  value       = aws_ecs_cluster.this.arn
}

output "service_name" {
  description = "Name of the ECS service."
  value       = aws_ecs_service.this.name
}

output "service_id" {
  description = "ID (ARN) of the ECS service."
  value       = aws_ecs_service.this.id
}

output "task_definition_arn" {
  description = "ARN of the task definition revision Terraform registered (later revisions come from the rollout tool)."
  value       = aws_ecs_task_definition.this.arn
}

output "task_definition_family" {
  description = "Family of the task definition."
  value       = aws_ecs_task_definition.this.family
}

output "container_name" {
  description = "Name of the app container."
  value       = var.container_name
}

output "container_port" {
  description = "Port the app container listens on."
  value       = var.container_port
}

output "log_group_name" {
  description = "Name of the CloudWatch log group of the containers."
  value       = aws_cloudwatch_log_group.this.name
}

output "autoscaling_policy_arns" {
  description = "ARNs of the target tracking scaling policies by metric (cpu, memory, requests); empty when autoscaling is off."
  value       = { for name, policy in aws_appautoscaling_policy.this : name => policy.arn }
}
