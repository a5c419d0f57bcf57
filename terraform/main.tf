locals {
  config       = yamldecode(file(coalesce(var.environments_file, "${path.module}/environments.yaml")))
  environments = local.config.environments

  # Shallow merge: an environment overrides whole keys of `defaults`.
  settings = merge(local.config.defaults, lookup(local.environments, var.environment, {}))

  emulator      = tobool(local.settings.emulator)
  name          = "${local.settings.app_name}-${var.environment}"
  https_enabled = local.settings.certificate_arn != ""

  tags = {
    app         = local.settings.app_name
    environment = var.environment
    managed-by  = "terraform"
  }
}

module "network" {
  source = "./modules/network"

  name        = local.name
  vpc_cidr    = local.settings.vpc_cidr
  nat_gateway = tobool(local.settings.nat_gateway)
  tags        = local.tags
}

module "security" {
  source = "./modules/security"

  name              = local.name
  vpc_id            = module.network.vpc_id
  container_port    = local.settings.container_port
  alb_ingress_cidrs = local.settings.alb_ingress_cidrs
  https_enabled     = local.https_enabled
  tags              = local.tags
}

module "ecr" {
  source = "./modules/ecr"

  name         = local.name
  keep_images  = local.settings.ecr_keep_images
  force_delete = local.emulator
  tags         = local.tags
}

module "iam" {
  source = "./modules/iam"

  name = local.name
  tags = local.tags
}

module "loadbalancer" {
  source = "./modules/loadbalancer"

  name                       = local.name
  vpc_id                     = module.network.vpc_id
  subnet_ids                 = module.network.public_subnet_ids
  security_group_ids         = [module.security.alb_security_group_id]
  container_port             = local.settings.container_port
  certificate_arn            = local.settings.certificate_arn
  enable_deletion_protection = false
  deregistration_delay       = local.settings.deregistration_delay
  health_check_path          = local.settings.health_check_path
  health_check_interval      = local.settings.health_check_interval
  health_check_timeout       = local.settings.health_check_timeout
  healthy_threshold          = local.settings.healthy_threshold
  unhealthy_threshold        = local.settings.unhealthy_threshold
  health_check_matcher       = tostring(local.settings.health_check_matcher)
  tags                       = local.tags
}

module "ecs" {
  source = "./modules/ecs"

  name                      = local.name
  container_name            = local.settings.app_name
  image                     = var.image
  container_port            = local.settings.container_port
  cpu                       = local.settings.cpu
  memory                    = local.settings.memory
  environment_variables     = local.settings.environment_variables
  log_retention_days        = local.settings.log_retention_days
  aws_region                = local.settings.aws_region
  execution_role_arn        = module.iam.execution_role_arn
  task_role_arn             = module.iam.task_role_arn
  desired_count             = local.settings.desired_count
  health_check_grace_period = local.settings.health_check_grace_period
  subnet_ids                = module.network.task_subnet_ids
  assign_public_ip          = module.network.assign_public_ip
  security_group_ids        = [module.security.task_security_group_id]
  target_group_arn          = module.loadbalancer.target_group_arn
  listener_arns             = module.loadbalancer.listener_arns
  tags                      = local.tags

  # Service Auto Scaling (autoscaling: true in environments.yaml); a target of 0 leaves its policy out.
  autoscaling = tobool(local.settings.autoscaling) ? {
    min_capacity        = local.settings.autoscaling_min_capacity
    max_capacity        = local.settings.autoscaling_max_capacity
    cpu_target          = local.settings.autoscaling_cpu_target > 0 ? local.settings.autoscaling_cpu_target : null
    memory_target       = local.settings.autoscaling_memory_target > 0 ? local.settings.autoscaling_memory_target : null
    requests_per_target = local.settings.autoscaling_requests_per_target > 0 ? local.settings.autoscaling_requests_per_target : null
    scale_in_cooldown   = local.settings.autoscaling_scale_in_cooldown
    scale_out_cooldown  = local.settings.autoscaling_scale_out_cooldown
  } : null
  alb_resource_label = module.loadbalancer.resource_label
}
