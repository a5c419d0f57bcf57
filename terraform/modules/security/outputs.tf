output "alb_security_group_id" {
  description = "ID of the load balancer security group."
  value       = aws_security_group.alb.id
}

output "task_security_group_id" {
  description = "ID of the ECS task security group."
  value       = aws_security_group.task.id
}
