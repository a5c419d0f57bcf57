variable "name" {
  type        = string
  description = "Name prefix for every resource, e.g. \"hello-staging\"."
}

variable "vpc_cidr" {
  type        = string
  description = "IPv4 CIDR block of the VPC. Subnets are carved out of it as /24s (a /16 to /20 is expected)."

  validation {
    condition     = try(cidrhost(var.vpc_cidr, 0) != "" && tonumber(split("/", var.vpc_cidr)[1]) >= 16 && tonumber(split("/", var.vpc_cidr)[1]) <= 20, false)
    error_message = "vpc_cidr must be a valid IPv4 CIDR block with a prefix length between /16 and /20."
  }
}

variable "availability_zones" {
  type        = list(string)
  description = "Availability zones (names) to spread the subnets over, one public and one private subnet each. Empty: the region's \"a\" and \"b\" zones."
  default     = []

  validation {
    condition     = length(var.availability_zones) == 0 || (length(var.availability_zones) >= 2 && length(var.availability_zones) <= 8)
    error_message = "availability_zones must be empty or list 2 to 8 zones (an ALB needs two)."
  }
}

variable "nat_gateway" {
  type        = bool
  description = "Create a single NAT gateway so that tasks can run in the private subnets. When false, tasks run in the public subnets with a public IP."
  default     = false
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource of the module."
  default     = {}
}
