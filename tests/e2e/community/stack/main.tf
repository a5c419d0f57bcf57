# A Fargate service behind an ALB written the way many teams write it: with
# terraform-aws-modules' ECS and ALB modules (vendored under ../vendor, pinned),
# at their defaults except for what any user must say (names, image, port,
# network). The e2e suite applies it to the local cloud (tests/e2e/test_community_modules.py).

provider "aws" {
  region = var.region

  # The local cloud: endpoint from AWS_ENDPOINT_URL, dummy credentials.
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  s3_use_path_style           = true
}

data "aws_availability_zones" "available" {}

locals {
  azs = slice(data.aws_availability_zones.available.names, 0, 2)
}

resource "aws_vpc" "this" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = { Name = var.name }
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id
}

resource "aws_subnet" "public" {
  count = length(local.azs)

  vpc_id                  = aws_vpc.this.id
  availability_zone       = local.azs[count.index]
  cidr_block              = cidrsubnet(var.vpc_cidr, 8, count.index)
  map_public_ip_on_launch = true

  tags = { Name = "${var.name}-public-${local.azs[count.index]}" }
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id

  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.this.id
  }
}

resource "aws_route_table_association" "public" {
  count = length(aws_subnet.public)

  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

module "alb" {
  source = "../vendor/terraform-aws-alb"

  name    = var.name
  vpc_id  = aws_vpc.this.id
  subnets = aws_subnet.public[*].id

  enable_deletion_protection = false

  security_group_ingress_rules = {
    all_http = {
      from_port   = 80
      to_port     = 80
      ip_protocol = "tcp"
      cidr_ipv4   = "0.0.0.0/0"
    }
  }
  security_group_egress_rules = {
    all = {
      ip_protocol = "-1"
      cidr_ipv4   = var.vpc_cidr
    }
  }

  listeners = {
    http = {
      port     = 80
      protocol = "HTTP"
      forward = {
        target_group_key = "app"
      }
    }
  }

  target_groups = {
    app = {
      backend_protocol = "HTTP"
      backend_port     = var.container_port
      target_type      = "ip"
      # as the module's own Fargate example: the default (300 s) keeps stopped
      # tasks draining for five minutes
      deregistration_delay = 5

      health_check = {
        path = var.health_check_path
      }

      # ECS registers the tasks
      create_attachment = false
    }
  }
}

module "ecs" {
  source = "../vendor/terraform-aws-ecs"

  cluster_name = var.name

  services = {
    (var.name) = {
      desired_count = var.desired_count
      # The module's default scalable target (min 1) and CPU/memory target tracking stay; the e2e
      # suite's local cloud takes a datapoint every 2 s, which turns AWS's 15-minute scale-in into
      # 30 s, so the minimum is the two replicas the test checks answer from distinct instances.
      autoscaling_min_capacity = var.desired_count

      container_definitions = {
        (var.container_name) = {
          image = var.image
          port_mappings = [{
            name          = var.container_name
            containerPort = var.container_port
            protocol      = "tcp"
          }]
        }
      }

      load_balancer = {
        service = {
          target_group_arn = module.alb.target_groups["app"].arn
          container_name   = var.container_name
          container_port   = var.container_port
        }
      }

      subnet_ids       = aws_subnet.public[*].id
      assign_public_ip = true
      security_group_rules = {
        alb_ingress = {
          type                     = "ingress"
          from_port                = var.container_port
          to_port                  = var.container_port
          protocol                 = "tcp"
          source_security_group_id = module.alb.security_group_id
        }
        egress_all = {
          type        = "egress"
          from_port   = 0
          to_port     = 0
          protocol    = "-1"
          cidr_blocks = ["0.0.0.0/0"]
        }
      }
    }
  }
}
