variable "github_org" {
  type        = string
  description = "GitHub organisation (or user) that owns the repository, e.g. \"acme\"."

  validation {
    condition     = can(regex("^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$", var.github_org))
    error_message = "github_org must be a GitHub account name: 1-39 letters, digits or hyphens, not starting with a hyphen."
  }
}

variable "github_repo" {
  type        = string
  description = "Name of the GitHub repository (without the organisation), e.g. \"hello\"."

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]{1,100}$", var.github_repo))
    error_message = "github_repo must be 1-100 letters, digits, '.', '_' or '-'."
  }
}

variable "github_branch" {
  type        = string
  description = "Branch whose workflow runs (jobs without a GitHub environment) may assume the role: OIDC subject repo:<org>/<repo>:ref:refs/heads/<branch>."
  default     = "main"

  validation {
    condition     = length(trimspace(var.github_branch)) > 0 && !can(regex("[*?\\s]", var.github_branch))
    error_message = "github_branch must be one branch name, without wildcards or spaces."
  }
}

variable "github_environments" {
  type        = list(string)
  description = "GitHub environments whose jobs may assume the role: OIDC subject repo:<org>/<repo>:environment:<name>. The release workflow's deploy jobs run in these."
  default     = ["staging", "production"]

  validation {
    condition     = alltrue([for e in var.github_environments : length(trimspace(e)) > 0 && !can(regex("[*?]", e))])
    error_message = "github_environments must be environment names, without wildcards."
  }
}

variable "app_name" {
  type        = string
  description = "app_name from environments.yaml: every resource of the stack is named \"<app_name>-<environment>\"."
  default     = "hello"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,30}$", var.app_name))
    error_message = "app_name must be lower-case letters, digits and hyphens (at most 31 characters)."
  }
}

variable "aws_region" {
  type        = string
  description = "AWS region the environments deploy to (aws_region in environments.yaml); regional permissions are limited to it."
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.aws_region))
    error_message = "aws_region must be an AWS region name such as us-east-1."
  }
}

variable "state_buckets" {
  type        = map(string)
  description = "The environments deployed from this AWS account, each mapped to its Terraform state bucket (state_bucket in environments.yaml), e.g. { staging = \"hello-tfstate-staging\" }. Only these environments' resources and state objects are granted."

  validation {
    condition     = length(var.state_buckets) > 0
    error_message = "state_buckets must list at least one environment."
  }

  validation {
    condition     = alltrue([for env in keys(var.state_buckets) : can(regex("^[a-z0-9][a-z0-9-]*$", env))])
    error_message = "state_buckets keys must be environment names: lower-case letters, digits and hyphens."
  }

  validation {
    condition     = alltrue([for b in values(var.state_buckets) : can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", b))])
    error_message = "state_buckets values must be S3 bucket names (3-63 lower-case letters, digits, '.' or '-')."
  }
}

variable "role_name" {
  type        = string
  description = "Name of the deploy role. It must not match \"<app_name>-<environment>-*\", the pattern of the ECS roles the deploy role manages."
  default     = "hello-github-deploy"

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", var.role_name))
    error_message = "role_name must be a valid IAM role name (1-64 characters of letters, digits and +=,.@_-)."
  }
}

variable "existing_oidc_provider_arn" {
  type        = string
  description = "ARN of a GitHub OIDC provider (token.actions.githubusercontent.com) that already exists in the account. Empty: this stack creates one (there can be only one per account)."
  default     = ""

  validation {
    condition     = var.existing_oidc_provider_arn == "" || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/token\\.actions\\.githubusercontent\\.com$", var.existing_oidc_provider_arn))
    error_message = "existing_oidc_provider_arn must be empty or the ARN of the token.actions.githubusercontent.com OIDC provider."
  }
}

variable "task_role_policy_arns" {
  type        = list(string)
  description = "Managed policies the stack attaches to the ECS task role (task_role_policy_arns of modules/iam). The deploy role may attach only these and AmazonECSTaskExecutionRolePolicy to the ECS roles."
  default     = []

  validation {
    condition     = alltrue([for arn in var.task_role_policy_arns : can(regex("^arn:aws[a-z-]*:iam::([0-9]{12}|aws):policy/.+$", arn))])
    error_message = "task_role_policy_arns must be IAM policy ARNs."
  }
}

variable "max_session_duration" {
  type        = number
  description = "Maximum session length of the deploy role, in seconds (3600-43200). A cold apply with a NAT gateway takes well under an hour."
  default     = 3600

  validation {
    condition     = var.max_session_duration >= 3600 && var.max_session_duration <= 43200 && floor(var.max_session_duration) == var.max_session_duration
    error_message = "max_session_duration must be an integer number of seconds between 3600 and 43200."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource of the stack."
  default     = {}
}
