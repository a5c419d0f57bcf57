variable "region" {
  type        = string
  description = "AWS region"
  default     = "us-east-1"
}

variable "name" {
  type        = string
  description = "Name of the cluster, service, load balancer and VPC"
  default     = "community"
}

variable "vpc_cidr" {
  type        = string
  description = "CIDR of the VPC"
  default     = "10.50.0.0/16"
}

variable "image" {
  type        = string
  description = "Container image (an ECR image URI, best pinned by digest)"
}

variable "container_name" {
  type        = string
  description = "Name of the container in the task definition"
  default     = "app"
}

variable "container_port" {
  type        = number
  description = "Port the container listens on"
  default     = 5000
}

variable "health_check_path" {
  type        = string
  description = "Target group health check path"
  default     = "/health"
}

variable "desired_count" {
  type        = number
  description = "Tasks to run"
  default     = 2
}
