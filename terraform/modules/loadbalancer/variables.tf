variable "name" {
  type        = string
  description = "Name of the load balancer and target group, e.g. \"hello-staging\" (at most 32 characters)."

  validation {
    condition     = can(regex("^[a-zA-Z0-9]([a-zA-Z0-9-]{0,30}[a-zA-Z0-9])?$", var.name))
    error_message = "name must be 1-32 letters, digits or hyphens, not starting or ending with a hyphen."
  }
}

variable "vpc_id" {
  type        = string
  description = "ID of the VPC of the target group."
}

variable "subnet_ids" {
  type        = list(string)
  description = "IDs of the public subnets (at least two AZs) for the load balancer."
}

variable "security_group_ids" {
  type        = list(string)
  description = "Security groups of the load balancer."
}

variable "container_port" {
  type        = number
  description = "Port of the targets (the container port)."

  validation {
    condition     = var.container_port >= 1 && var.container_port <= 65535 && floor(var.container_port) == var.container_port
    error_message = "container_port must be an integer between 1 and 65535."
  }
}

variable "certificate_arn" {
  type        = string
  description = "ACM certificate ARN. When set, an HTTPS listener on 443 forwards to the targets and HTTP redirects to HTTPS; when empty, HTTP on 80 forwards."
  default     = ""
}

variable "ssl_policy" {
  type        = string
  description = "TLS policy of the HTTPS listener."
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

variable "enable_deletion_protection" {
  type        = bool
  description = "Protect the load balancer from deletion (must be turned off before `terraform destroy`)."
  default     = false
}

variable "idle_timeout" {
  type        = number
  description = "Idle connection timeout of the load balancer, in seconds."
  default     = 60
}

variable "deregistration_delay" {
  type        = number
  description = "Seconds the target group keeps draining a deregistering target."
  default     = 30

  validation {
    condition     = var.deregistration_delay >= 0 && var.deregistration_delay <= 3600
    error_message = "deregistration_delay must be between 0 and 3600 seconds."
  }
}

variable "health_check_path" {
  type        = string
  description = "HTTP path of the target group health check."
  default     = "/health"

  validation {
    condition     = startswith(var.health_check_path, "/")
    error_message = "health_check_path must start with \"/\"."
  }
}

variable "health_check_interval" {
  type        = number
  description = "Seconds between health checks of a target (5-300)."
  default     = 15
}

variable "health_check_timeout" {
  type        = number
  description = "Seconds without a response that fail a health check (2-120, less than the interval)."
  default     = 5
}

variable "healthy_threshold" {
  type        = number
  description = "Consecutive successful health checks before a target is healthy (2-10)."
  default     = 2
}

variable "unhealthy_threshold" {
  type        = number
  description = "Consecutive failed health checks before a target is unhealthy (2-10)."
  default     = 3
}

variable "health_check_matcher" {
  type        = string
  description = "HTTP codes that count as healthy, e.g. \"200\" or \"200-299\"."
  default     = "200"
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource of the module."
  default     = {}
}
