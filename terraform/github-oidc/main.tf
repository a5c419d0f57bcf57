# GitHub OIDC provider and the deploy role assumed by .github/workflows/release.yml
# (aws-actions/configure-aws-credentials, role-to-assume: vars.AWS_DEPLOY_ROLE_ARN).
#
# The role may do exactly what a deploy does, for the environments listed in
# var.state_buckets and nothing else:
#   - terraform plan/apply of ../ (state object and its .tflock lock; VPC,
#     ALB, ECS, ECR, the ECS task/execution roles, the log group);
#   - push and promote images to the app's ECR repositories;
#   - roll out: register task definition revisions, update the service,
#     watch tasks, targets and logs.
# Resources are scoped by ARN wherever the action supports it. EC2 resources
# get random IDs, so those statements are scoped to the resource type in this
# account and region and, beyond that, to the tags the stack's provider puts
# on everything (default_tags: app, environment). Every "*" below carries a
# comment saying why AWS requires it.

provider "aws" {
  region = var.aws_region
}

data "aws_partition" "this" {}

data "aws_caller_identity" "this" {}

locals {
  partition  = data.aws_partition.this.partition
  account_id = data.aws_caller_identity.this.account_id
  region     = var.aws_region

  create_oidc_provider = var.existing_oidc_provider_arn == ""
  oidc_provider_arn    = local.create_oidc_provider ? aws_iam_openid_connect_provider.github[0].arn : var.existing_oidc_provider_arn

  # OIDC subjects allowed to assume the role: the main branch, and jobs that
  # run in one of the GitHub environments (release.yml's staging/production).
  repository = "${var.github_org}/${var.github_repo}"
  subjects = concat(
    ["repo:${local.repository}:ref:refs/heads/${var.github_branch}"],
    [for env in var.github_environments : "repo:${local.repository}:environment:${env}"],
  )

  # Environments deployed from this account and their resource names
  # ("<app_name>-<environment>", e.g. hello-staging).
  environments = sort(keys(var.state_buckets))
  names        = [for env in local.environments : "${var.app_name}-${env}"]

  # ARN prefixes.
  ec2_arn  = "arn:${local.partition}:ec2:${local.region}:${local.account_id}"
  ecs_arn  = "arn:${local.partition}:ecs:${local.region}:${local.account_id}"
  ecr_arn  = "arn:${local.partition}:ecr:${local.region}:${local.account_id}"
  elb_arn  = "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}"
  logs_arn = "arn:${local.partition}:logs:${local.region}:${local.account_id}"
  iam_arn  = "arn:${local.partition}:iam::${local.account_id}"

  # EC2 resource types of modules/network and modules/security.
  ec2_resources = [for type in ["vpc", "subnet", "internet-gateway", "route-table", "security-group", "natgateway", "elastic-ip"] : "${local.ec2_arn}:${type}/*"]
  ec2_create_actions = [
    "ec2:CreateVpc",
    "ec2:CreateSubnet",
    "ec2:CreateInternetGateway",
    "ec2:CreateRouteTable",
    "ec2:CreateSecurityGroup",
    "ec2:AllocateAddress",
    "ec2:CreateNatGateway",
  ]

  # Roles of modules/iam: <name>-execution and <name>-task.
  ecs_role_arns = [for name in local.names : "${local.iam_arn}:role/${name}-*"]

  # Policies the deploy role may attach to those roles.
  ecs_role_policy_arns = concat(
    ["arn:${local.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"],
    var.task_role_policy_arns,
  )

  policies = {
    terraform-state = {
      description = "Read/write the Terraform state object and its lock file of the app's environments"
      json        = data.aws_iam_policy_document.terraform_state.json
    }
    network = {
      description = "Manage the app's VPC, subnets, gateways, route tables and security groups"
      json        = data.aws_iam_policy_document.network.json
    }
    loadbalancing = {
      description = "Manage the app's ALB, target group and listeners; read load balancer state"
      json        = data.aws_iam_policy_document.loadbalancing.json
    }
    ecs = {
      description = "Manage the app's ECS cluster, service, task definitions and log group; roll out and watch"
      json        = data.aws_iam_policy_document.ecs.json
    }
    registry = {
      description = "Manage the app's ECR repositories; push, pull and promote images"
      json        = data.aws_iam_policy_document.registry.json
    }
    iam = {
      description = "Manage and pass the app's ECS task and execution roles"
      json        = data.aws_iam_policy_document.iam.json
    }
  }
}

# ---------------------------------------------------------------------------
# OIDC provider and role
# ---------------------------------------------------------------------------

# One per account: set existing_oidc_provider_arn when it already exists.
# No thumbprint: AWS validates token.actions.githubusercontent.com against its
# own trusted CAs.
resource "aws_iam_openid_connect_provider" "github" {
  count = local.create_oidc_provider ? 1 : 0

  url            = "https://token.actions.githubusercontent.com"
  client_id_list = ["sts.amazonaws.com"]

  tags = var.tags
}

data "aws_iam_policy_document" "trust" {
  statement {
    sid     = "GitHubActionsOidc"
    effect  = "Allow"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }

    # Exact subjects, no wildcard: the main branch and the listed environments.
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:sub"
      values   = local.subjects
    }
  }
}

resource "aws_iam_role" "deploy" {
  name                 = var.role_name
  description          = "Deploy role of ${local.repository} (GitHub Actions OIDC): terraform apply, image push, rollouts of ${join(", ", local.names)}"
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = var.max_session_duration

  tags = var.tags
}

resource "aws_iam_policy" "deploy" {
  for_each = local.policies

  name        = "${var.role_name}-${each.key}"
  description = each.value.description
  policy      = each.value.json

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "deploy" {
  for_each = local.policies

  role       = aws_iam_role.deploy.name
  policy_arn = aws_iam_policy.deploy[each.key].arn
}

# ---------------------------------------------------------------------------
# Terraform state (S3 backend with use_lockfile)
# ---------------------------------------------------------------------------

data "aws_iam_policy_document" "terraform_state" {
  # `terraform init` lists the bucket (workspaces); ship's HeadBucket needs it too.
  statement {
    sid       = "StateBucketList"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [for bucket in distinct(values(var.state_buckets)) : "arn:${local.partition}:s3:::${bucket}"]
  }

  statement {
    sid     = "StateObject"
    effect  = "Allow"
    actions = ["s3:GetObject", "s3:PutObject"]
    resources = [
      for env in local.environments : "arn:${local.partition}:s3:::${var.state_buckets[env]}/env/${env}/terraform.tfstate"
    ]
  }

  # S3 native locking: the lock is an object next to the state, created and
  # deleted by every plan/apply.
  statement {
    sid     = "StateLockObject"
    effect  = "Allow"
    actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = [
      for env in local.environments : "arn:${local.partition}:s3:::${var.state_buckets[env]}/env/${env}/terraform.tfstate.tflock"
    ]
  }
}

# ---------------------------------------------------------------------------
# EC2: VPC, subnets, internet/NAT gateways, EIP, route tables, security groups
# ---------------------------------------------------------------------------

data "aws_iam_policy_document" "network" {
  # "*": these EC2 Describe actions do not support resource-level
  # permissions. They are the reads of the provider (plan/refresh, and its
  # waits for ENIs released by the ALB and tasks before subnets and security
  # groups can be deleted).
  statement {
    sid    = "Ec2Describe"
    effect = "Allow"
    actions = [
      "ec2:DescribeAccountAttributes",
      "ec2:DescribeAddresses",
      "ec2:DescribeAddressesAttribute",
      "ec2:DescribeAvailabilityZones",
      "ec2:DescribeInternetGateways",
      "ec2:DescribeNatGateways",
      "ec2:DescribeNetworkAcls",
      "ec2:DescribeNetworkInterfaces",
      "ec2:DescribeRouteTables",
      "ec2:DescribeSecurityGroupRules",
      "ec2:DescribeSecurityGroups",
      "ec2:DescribeSubnets",
      "ec2:DescribeTags",
      "ec2:DescribeVpcs",
    ]
    resources = ["*"]
  }

  # The one read that takes a resource: VPC attributes (DNS settings).
  statement {
    sid       = "Ec2DescribeVpcAttribute"
    effect    = "Allow"
    actions   = ["ec2:DescribeVpcAttribute"]
    resources = ["${local.ec2_arn}:vpc/*"]
  }

  # Creation: only with the stack's tags in the request (the provider's
  # default_tags are sent at creation).
  statement {
    sid       = "Ec2CreateTagged"
    effect    = "Allow"
    actions   = local.ec2_create_actions
    resources = local.ec2_resources

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/app"
      values   = [var.app_name]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/environment"
      values   = local.environments
    }
  }

  # Tag-on-create needs ec2:CreateTags, limited here to those create calls.
  statement {
    sid       = "Ec2TagOnCreate"
    effect    = "Allow"
    actions   = ["ec2:CreateTags"]
    resources = local.ec2_resources

    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values   = [for action in local.ec2_create_actions : trimprefix(action, "ec2:")]
    }
  }

  # The VPC's default security group is created by AWS untagged; the provider
  # tags it (with the stack's tags) before emptying its rules.
  statement {
    sid       = "Ec2AdoptDefaultSecurityGroup"
    effect    = "Allow"
    actions   = ["ec2:CreateTags"]
    resources = ["${local.ec2_arn}:security-group/*"]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/app"
      values   = [var.app_name]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/environment"
      values   = local.environments
    }
  }

  # Changes and deletion: only resources carrying the stack's tags.
  statement {
    sid    = "Ec2ManageTagged"
    effect = "Allow"
    actions = [
      "ec2:CreateTags",
      "ec2:DeleteTags",
      "ec2:ModifyVpcAttribute",
      "ec2:DeleteVpc",
      "ec2:ModifySubnetAttribute",
      "ec2:DeleteSubnet",
      "ec2:AttachInternetGateway",
      "ec2:DetachInternetGateway",
      "ec2:DeleteInternetGateway",
      "ec2:CreateRoute",
      "ec2:ReplaceRoute",
      "ec2:DeleteRoute",
      "ec2:AssociateRouteTable",
      "ec2:DisassociateRouteTable",
      "ec2:ReplaceRouteTableAssociation",
      "ec2:DeleteRouteTable",
      "ec2:DeleteNatGateway",
      "ec2:DisassociateAddress",
      "ec2:ReleaseAddress",
      "ec2:AuthorizeSecurityGroupIngress",
      "ec2:AuthorizeSecurityGroupEgress",
      "ec2:RevokeSecurityGroupIngress",
      "ec2:RevokeSecurityGroupEgress",
      "ec2:UpdateSecurityGroupRuleDescriptionsIngress",
      "ec2:UpdateSecurityGroupRuleDescriptionsEgress",
      "ec2:ModifySecurityGroupRules",
      "ec2:DeleteSecurityGroup",
    ]
    resources = local.ec2_resources

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/app"
      values   = [var.app_name]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/environment"
      values   = local.environments
    }
  }

  # Security group rules are sub-resources of a group; the group itself is
  # tag-checked by Ec2ManageTagged.
  statement {
    sid    = "Ec2SecurityGroupRules"
    effect = "Allow"
    actions = [
      "ec2:AuthorizeSecurityGroupIngress",
      "ec2:AuthorizeSecurityGroupEgress",
      "ec2:RevokeSecurityGroupIngress",
      "ec2:RevokeSecurityGroupEgress",
      "ec2:UpdateSecurityGroupRuleDescriptionsIngress",
      "ec2:UpdateSecurityGroupRuleDescriptionsEgress",
      "ec2:ModifySecurityGroupRules",
    ]
    resources = ["${local.ec2_arn}:security-group-rule/*"]
  }
}

# ---------------------------------------------------------------------------
# Elastic Load Balancing v2: ALB, target group, listeners
# ---------------------------------------------------------------------------

data "aws_iam_policy_document" "loadbalancing" {
  # "*": Describe* actions of Elastic Load Balancing do not support
  # resource-level permissions (Terraform reads; ship reads target health).
  statement {
    sid       = "ElbDescribe"
    effect    = "Allow"
    actions   = ["elasticloadbalancing:Describe*"]
    resources = ["*"]
  }

  statement {
    sid    = "ElbManage"
    effect = "Allow"
    actions = [
      "elasticloadbalancing:CreateLoadBalancer",
      "elasticloadbalancing:ModifyLoadBalancerAttributes",
      "elasticloadbalancing:SetSecurityGroups",
      "elasticloadbalancing:SetSubnets",
      "elasticloadbalancing:SetIpAddressType",
      "elasticloadbalancing:DeleteLoadBalancer",
      "elasticloadbalancing:CreateTargetGroup",
      "elasticloadbalancing:ModifyTargetGroup",
      "elasticloadbalancing:ModifyTargetGroupAttributes",
      "elasticloadbalancing:DeleteTargetGroup",
      "elasticloadbalancing:CreateListener",
      "elasticloadbalancing:ModifyListener",
      "elasticloadbalancing:ModifyListenerAttributes",
      "elasticloadbalancing:DeleteListener",
      "elasticloadbalancing:AddTags",
      "elasticloadbalancing:RemoveTags",
    ]
    resources = flatten([
      for name in local.names : [
        "${local.elb_arn}:loadbalancer/app/${name}/*",
        "${local.elb_arn}:targetgroup/${name}/*",
        "${local.elb_arn}:listener/app/${name}/*",
      ]
    ])
  }
}

# ---------------------------------------------------------------------------
# ECS (cluster, service, task definitions, tasks) and CloudWatch Logs
# ---------------------------------------------------------------------------

data "aws_iam_policy_document" "ecs" {
  # "*": these task definition actions do not support resource-level
  # permissions. The task definition's roles are still limited by iam:PassRole
  # (policy "iam"), and ECS tagging of revisions by EcsTagging below.
  statement {
    sid    = "EcsTaskDefinitions"
    effect = "Allow"
    actions = [
      "ecs:RegisterTaskDefinition",
      "ecs:DeregisterTaskDefinition",
      "ecs:DescribeTaskDefinition",
      "ecs:ListTaskDefinitions",
    ]
    resources = ["*"]
  }

  # "*": ecs:CreateCluster takes no resource ARN; limited to requests that
  # carry the stack's tags.
  statement {
    sid       = "EcsCreateCluster"
    effect    = "Allow"
    actions   = ["ecs:CreateCluster"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/app"
      values   = [var.app_name]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/environment"
      values   = local.environments
    }
  }

  statement {
    sid    = "EcsClusters"
    effect = "Allow"
    actions = [
      "ecs:DescribeClusters",
      "ecs:UpdateCluster",
      "ecs:UpdateClusterSettings",
      "ecs:DeleteCluster",
    ]
    resources = [for name in local.names : "${local.ecs_arn}:cluster/${name}"]
  }

  statement {
    sid    = "EcsServices"
    effect = "Allow"
    actions = [
      "ecs:CreateService",
      "ecs:DescribeServices",
      "ecs:UpdateService",
      "ecs:DeleteService",
    ]
    resources = [for name in local.names : "${local.ecs_arn}:service/${name}/${name}"]
  }

  statement {
    sid       = "EcsDescribeTasks"
    effect    = "Allow"
    actions   = ["ecs:DescribeTasks"]
    resources = [for name in local.names : "${local.ecs_arn}:task/${name}/*"]
  }

  # "*": ecs:ListTasks is authorized against container instances, which
  # Fargate has none of; the ecs:cluster condition limits it to the app's
  # clusters.
  statement {
    sid       = "EcsListTasks"
    effect    = "Allow"
    actions   = ["ecs:ListTasks"]
    resources = ["*"]

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [for name in local.names : "${local.ecs_arn}:cluster/${name}"]
    }
  }

  # Tags at creation (cluster, service, every task definition revision) and
  # later tag changes.
  statement {
    sid    = "EcsTagging"
    effect = "Allow"
    actions = [
      "ecs:TagResource",
      "ecs:UntagResource",
      "ecs:ListTagsForResource",
    ]
    resources = flatten([
      for name in local.names : [
        "${local.ecs_arn}:cluster/${name}",
        "${local.ecs_arn}:service/${name}/${name}",
        "${local.ecs_arn}:task-definition/${name}:*",
      ]
    ])
  }

  # The log group's ARN pattern: listing covers the account and region.
  statement {
    sid       = "LogsDescribeGroups"
    effect    = "Allow"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["${local.logs_arn}:log-group:*"]
  }

  statement {
    sid    = "LogsManageGroup"
    effect = "Allow"
    actions = [
      "logs:CreateLogGroup",
      "logs:DeleteLogGroup",
      "logs:PutRetentionPolicy",
      "logs:DeleteRetentionPolicy",
      "logs:TagResource",
      "logs:UntagResource",
      "logs:ListTagsForResource",
      "logs:TagLogGroup",
      "logs:UntagLogGroup",
      "logs:ListTagsLogGroup",
      "logs:FilterLogEvents",
    ]
    resources = flatten([
      for name in local.names : [
        "${local.logs_arn}:log-group:/ecs/${name}",
        "${local.logs_arn}:log-group:/ecs/${name}:*",
      ]
    ])
  }
}

# ---------------------------------------------------------------------------
# ECR: repository management, image push/pull/promotion
# ---------------------------------------------------------------------------

data "aws_iam_policy_document" "registry" {
  # "*": ecr:GetAuthorizationToken is account-wide and supports no resource.
  statement {
    sid       = "EcrLogin"
    effect    = "Allow"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid    = "EcrRepositories"
    effect = "Allow"
    actions = [
      # Terraform (modules/ecr)
      "ecr:CreateRepository",
      "ecr:DeleteRepository",
      "ecr:DescribeRepositories",
      "ecr:PutImageTagMutability",
      "ecr:PutImageScanningConfiguration",
      "ecr:PutLifecyclePolicy",
      "ecr:GetLifecyclePolicy",
      "ecr:DeleteLifecyclePolicy",
      "ecr:TagResource",
      "ecr:UntagResource",
      "ecr:ListTagsForResource",
      # image push, pull and promotion (ship)
      "ecr:BatchCheckLayerAvailability",
      "ecr:InitiateLayerUpload",
      "ecr:UploadLayerPart",
      "ecr:CompleteLayerUpload",
      "ecr:PutImage",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
      "ecr:DescribeImages",
    ]
    resources = [for name in local.names : "${local.ecr_arn}:repository/${name}"]
  }
}

# ---------------------------------------------------------------------------
# IAM: the ECS task and execution roles (modules/iam)
# ---------------------------------------------------------------------------

data "aws_iam_policy_document" "iam" {
  statement {
    sid    = "EcsRoles"
    effect = "Allow"
    actions = [
      "iam:CreateRole",
      "iam:GetRole",
      "iam:UpdateRole",
      "iam:UpdateRoleDescription",
      "iam:UpdateAssumeRolePolicy",
      "iam:DeleteRole",
      "iam:TagRole",
      "iam:UntagRole",
      "iam:ListRoleTags",
      "iam:ListRolePolicies",
      "iam:ListAttachedRolePolicies",
      "iam:ListInstanceProfilesForRole",
    ]
    resources = local.ecs_role_arns
  }

  # Only the managed policies the stack attaches: no way to grant the ECS
  # roles (and so the app's containers) anything else.
  statement {
    sid       = "EcsRolePolicies"
    effect    = "Allow"
    actions   = ["iam:AttachRolePolicy", "iam:DetachRolePolicy"]
    resources = local.ecs_role_arns

    condition {
      test     = "ArnEquals"
      variable = "iam:PolicyARN"
      values   = local.ecs_role_policy_arns
    }
  }

  # Task definitions name the roles; only ECS tasks may receive them.
  statement {
    sid       = "PassEcsRoles"
    effect    = "Allow"
    actions   = ["iam:PassRole"]
    resources = local.ecs_role_arns

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }

  # First ECS cluster/service and ALB of an account create their
  # service-linked roles.
  statement {
    sid     = "ServiceLinkedRoles"
    effect  = "Allow"
    actions = ["iam:CreateServiceLinkedRole"]
    resources = [
      "${local.iam_arn}:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS",
      "${local.iam_arn}:role/aws-service-role/elasticloadbalancing.amazonaws.com/AWSServiceRoleForElasticLoadBalancing",
    ]

    condition {
      test     = "StringEquals"
      variable = "iam:AWSServiceName"
      values   = ["ecs.amazonaws.com", "elasticloadbalancing.amazonaws.com"]
    }
  }

  # Belt and braces: the deploy role can never change itself or its policies,
  # whatever names are chosen.
  statement {
    sid     = "DenySelfModification"
    effect  = "Deny"
    actions = ["iam:*"]
    resources = [
      "${local.iam_arn}:role/${var.role_name}",
      "${local.iam_arn}:policy/${var.role_name}-*",
    ]
  }
}
