output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr" {
  description = "CIDR block of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "availability_zones" {
  description = "Availability zones the subnets are spread over."
  value       = local.azs
}

output "public_subnet_ids" {
  description = "IDs of the public subnets (for the load balancer)."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "IDs of the private subnets."
  value       = aws_subnet.private[*].id
}

output "task_subnet_ids" {
  description = "IDs of the subnets ECS tasks should run in: private with a NAT gateway, public without."
  value       = var.nat_gateway ? aws_subnet.private[*].id : aws_subnet.public[*].id
}

output "assign_public_ip" {
  description = "Whether ECS tasks need a public IP (true when there is no NAT gateway)."
  value       = !var.nat_gateway
}

output "nat_gateway_id" {
  description = "ID of the NAT gateway, or null when nat_gateway is false."
  value       = one(aws_nat_gateway.this[*].id)
}
