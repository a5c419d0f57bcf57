variable "name" {
  type        = string
  description = "Name of the cluster, service and task definition family, e.g. \"hello-staging\"."
}

variable "container_name" {
  type        = string
  description = "Name of the single container in the task definition (the app's name)."

  validation {
    condition     = can(regex("^[a-zA-Z0-9][a-zA-Z0-9_-]{0,254}$", var.container_name))
    error_message = "container_name must be 1-255 letters, digits, hyphens or underscores."
  }
}

variable "image" {
  type        = string
  description = "Container image of the first task definition revision. Later revisions are registered outside Terraform and are not reverted (the service ignores task_definition changes)."
}

variable "container_port" {
  type        = number
  description = "Port the container listens on."

  validation {
    condition     = var.container_port >= 1 && var.container_port <= 65535 && floor(var.container_port) == var.container_port
    error_message = "container_port must be an integer between 1 and 65535."
  }
}

variable "cpu" {
  type        = number
  description = "Task CPU units (a Fargate size: 256, 512, 1024, 2048, 4096, 8192 or 16384)."
  default     = 256

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.cpu)
    error_message = "cpu must be one of the Fargate sizes: 256, 512, 1024, 2048, 4096, 8192, 16384."
  }
}

variable "memory" {
  type        = number
  description = "Task memory in MiB (must be a valid Fargate combination with cpu). Also set as the container's hard limit."
  default     = 512
}

variable "environment_variables" {
  type        = map(string)
  description = "Plain environment variables of the container."
  default     = {}
}

variable "stop_timeout" {
  type        = number
  description = "Seconds between SIGTERM and SIGKILL when a container stops (at most 120 on Fargate)."
  default     = 30

  validation {
    condition     = var.stop_timeout >= 2 && var.stop_timeout <= 120
    error_message = "stop_timeout must be between 2 and 120 seconds."
  }
}

variable "container_insights" {
  type        = string
  description = "CloudWatch Container Insights setting of the cluster."
  default     = "enabled"

  validation {
    condition     = contains(["enabled", "enhanced", "disabled"], var.container_insights)
    error_message = "container_insights must be \"enabled\", \"enhanced\" or \"disabled\"."
  }
}

variable "log_retention_days" {
  type        = number
  description = "Days CloudWatch Logs keeps the container logs."
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)."
  }
}

variable "aws_region" {
  type        = string
  description = "Region of the log group (the awslogs-region option)."
}

variable "execution_role_arn" {
  type        = string
  description = "ARN of the task execution role."
}

variable "task_role_arn" {
  type        = string
  description = "ARN of the task role."
}

variable "desired_count" {
  type        = number
  description = "Number of tasks the service keeps running."
  default     = 2

  validation {
    condition     = var.desired_count >= 0 && floor(var.desired_count) == var.desired_count
    error_message = "desired_count must be a non-negative integer."
  }
}

variable "health_check_grace_period" {
  type        = number
  description = "Seconds the service ignores load balancer health checks after a task starts."
  default     = 30
}

variable "subnet_ids" {
  type        = list(string)
  description = "Subnets the tasks run in."
}

variable "security_group_ids" {
  type        = list(string)
  description = "Security groups of the tasks."
}

variable "assign_public_ip" {
  type        = bool
  description = "Give tasks a public IP (needed in public subnets without a NAT gateway to pull images)."
  default     = false
}

variable "target_group_arn" {
  type        = string
  description = "ARN of the target group the service registers its tasks in."
}

variable "listener_arns" {
  type        = list(string)
  description = "ARNs of the listeners in front of the target group; the service is created only after they exist."
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource of the module."
  default     = {}
}

variable "autoscaling" {
  type = object({
    min_capacity        = number
    max_capacity        = number
    cpu_target          = optional(number) # average CPU utilization, percent
    memory_target       = optional(number) # average memory utilization, percent
    requests_per_target = optional(number) # ALB requests per target per minute
    scale_in_cooldown   = optional(number, 300)
    scale_out_cooldown  = optional(number, 300)
  })
  description = "Service Auto Scaling: min/max tasks and one target tracking policy per target given. null (the default): off, the service keeps desired_count."
  default     = null

  validation {
    condition     = var.autoscaling == null || try(var.autoscaling.min_capacity >= 0 && var.autoscaling.min_capacity <= var.autoscaling.max_capacity && floor(var.autoscaling.min_capacity) == var.autoscaling.min_capacity && floor(var.autoscaling.max_capacity) == var.autoscaling.max_capacity, false)
    error_message = "autoscaling.min_capacity and max_capacity must be integers with 0 <= min_capacity <= max_capacity."
  }
  validation {
    condition     = var.autoscaling == null || try(var.autoscaling.min_capacity <= var.desired_count && var.desired_count <= var.autoscaling.max_capacity, false)
    error_message = "desired_count must lie between autoscaling.min_capacity and autoscaling.max_capacity (min <= desired <= max)."
  }
  validation {
    condition     = var.autoscaling == null || try(length(compact([for t in [var.autoscaling.cpu_target, var.autoscaling.memory_target, var.autoscaling.requests_per_target] : t == null ? "" : "x"])) > 0, false)
    error_message = "autoscaling needs at least one of cpu_target, memory_target or requests_per_target."
  }
  validation {
    condition     = var.autoscaling == null || try(alltrue([for t in [var.autoscaling.cpu_target, var.autoscaling.memory_target] : t == null ? true : t > 0 && t <= 100]) && (var.autoscaling.requests_per_target == null ? true : var.autoscaling.requests_per_target > 0), false)
    error_message = "autoscaling targets must be positive; cpu_target and memory_target are percentages (at most 100)."
  }
  validation {
    condition     = var.autoscaling == null || try(var.autoscaling.scale_in_cooldown >= 0 && var.autoscaling.scale_out_cooldown >= 0, false)
    error_message = "autoscaling cooldowns must be zero or more seconds."
  }
  validation {
    condition     = var.autoscaling == null || try(var.autoscaling.requests_per_target == null ? true : var.alb_resource_label != "", false)
    error_message = "autoscaling.requests_per_target needs alb_resource_label (app/<alb name>/<id>/targetgroup/<target group name>/<id>)."
  }
}

variable "alb_resource_label" {
  type        = string
  description = "The ResourceLabel of ALBRequestCountPerTarget: app/<alb name>/<id>/targetgroup/<target group name>/<id> (the load balancer's and target group's arn_suffix joined by /). Needed only with autoscaling.requests_per_target."
  default     = ""
}
