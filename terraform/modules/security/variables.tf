variable "name" {
  type        = string
  description = "Name prefix for the security groups, e.g. \"hello-staging\"."
}

variable "vpc_id" {
  type        = string
  description = "ID of the VPC the security groups belong to."
}

variable "container_port" {
  type        = number
  description = "Port the container listens on; the only port the task security group admits, and only from the ALB."

  validation {
    condition     = var.container_port >= 1 && var.container_port <= 65535 && floor(var.container_port) == var.container_port
    error_message = "container_port must be an integer between 1 and 65535."
  }
}

variable "alb_ingress_cidrs" {
  type        = list(string)
  description = "IPv4 CIDR blocks allowed to reach the load balancer on port 80 (and 443 when HTTPS is enabled)."
  default     = ["0.0.0.0/0"]

  validation {
    condition     = alltrue([for cidr in var.alb_ingress_cidrs : can(cidrhost(cidr, 0)) && !can(regex(":", cidr))])
    error_message = "Every entry of alb_ingress_cidrs must be a valid IPv4 CIDR block."
  }
}

variable "https_enabled" {
  type        = bool
  description = "Open port 443 on the load balancer security group (set when a certificate ARN is given)."
  default     = false
}

variable "task_egress_cidrs" {
  type        = list(string)
  description = "IPv4 CIDR blocks tasks may reach on TCP 443 (ECR image pulls, CloudWatch Logs and other AWS APIs)."
  default     = ["0.0.0.0/0"]

  validation {
    condition     = alltrue([for cidr in var.task_egress_cidrs : can(cidrhost(cidr, 0)) && !can(regex(":", cidr))])
    error_message = "Every entry of task_egress_cidrs must be a valid IPv4 CIDR block."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource of the module."
  default     = {}
}
