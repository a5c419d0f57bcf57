output "alb_arn" {
  description = "ARN of the load balancer."
  value       = aws_lb.this.arn
}

output "alb_dns_name" {
  description = "DNS name of the load balancer."
  value       = aws_lb.this.dns_name
}

output "alb_zone_id" {
  description = "Route 53 hosted zone ID of the load balancer (for alias records)."
  value       = aws_lb.this.zone_id
}

output "target_group_arn" {
  description = "ARN of the target group the ECS service registers its tasks in."
  value       = aws_lb_target_group.this.arn
}

output "listener_arns" {
  description = "ARNs of all listeners (HTTP, and HTTPS when a certificate is given)."
  value       = concat(aws_lb_listener.http[*].arn, aws_lb_listener.http_redirect[*].arn, aws_lb_listener.https[*].arn)
}

output "https_enabled" {
  description = "Whether the load balancer serves HTTPS (a certificate ARN was given)."
  value       = local.https_enabled
}

output "url" {
  description = "Base URL of the service behind the load balancer."
  value       = "${local.https_enabled ? "https" : "http"}://${aws_lb.this.dns_name}"
}

output "resource_label" {
  description = "app/<alb name>/<id>/targetgroup/<target group name>/<id>: the ResourceLabel of the ALBRequestCountPerTarget metric (Service Auto Scaling)."
  value       = "${aws_lb.this.arn_suffix}/${aws_lb_target_group.this.arn_suffix}"
}
