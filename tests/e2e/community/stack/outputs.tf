output "url" {
  description = "The load balancer's URL"
  value       = "http://${module.alb.dns_name}"
}

output "load_balancer_arn" {
  description = "ARN of the load balancer"
  value       = module.alb.arn
}

output "cluster_name" {
  description = "ECS cluster name"
  value       = module.ecs.cluster_name
}

output "service_name" {
  description = "ECS service name"
  value       = var.name
}

output "target_group_arn" {
  description = "ARN of the service's target group"
  value       = module.alb.target_groups["app"].arn
}
