output "environment" {
  description = "Name of the environment."
  value       = var.environment
}

output "aws_region" {
  description = "AWS region of the environment."
  value       = local.settings.aws_region
}

output "emulator" {
  description = "Whether the environment lives on the local emulator rather than AWS."
  value       = local.emulator
}

output "service_url" {
  description = "Base URL of the service: http://<alb dns>, or https:// when a certificate is configured."
  value       = module.loadbalancer.url
}

output "alb_dns_name" {
  description = "DNS name of the load balancer."
  value       = module.loadbalancer.alb_dns_name
}

output "alb_arn" {
  description = "ARN of the load balancer."
  value       = module.loadbalancer.alb_arn
}

output "listener_arns" {
  description = "ARNs of the load balancer listeners."
  value       = module.loadbalancer.listener_arns
}

output "target_group_arn" {
  description = "ARN of the target group of the ECS service."
  value       = module.loadbalancer.target_group_arn
}

output "ecr_repository_url" {
  description = "URL of the ECR repository for the app's images."
  value       = module.ecr.repository_url
}

output "ecr_repository_name" {
  description = "Name of the ECR repository."
  value       = module.ecr.repository_name
}

output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = module.ecs.cluster_name
}

output "service_name" {
  description = "Name of the ECS service."
  value       = module.ecs.service_name
}

output "task_definition_arn" {
  description = "ARN of the task definition revision registered by Terraform (the bootstrap revision; rollouts register later ones)."
  value       = module.ecs.task_definition_arn
}

output "task_definition_family" {
  description = "Family of the task definition; rollouts register new revisions in it."
  value       = module.ecs.task_definition_family
}

output "container_name" {
  description = "Name of the app container in the task definition."
  value       = module.ecs.container_name
}

output "container_port" {
  description = "Port the app container listens on."
  value       = module.ecs.container_port
}

output "log_group_name" {
  description = "CloudWatch log group of the app containers."
  value       = module.ecs.log_group_name
}

output "autoscaling_policy_arns" {
  description = "ARNs of the service's target tracking scaling policies by metric; empty when autoscaling is off."
  value       = module.ecs.autoscaling_policy_arns
}
