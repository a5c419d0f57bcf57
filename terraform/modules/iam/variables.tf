variable "name" {
  type        = string
  description = "Name prefix for the roles, e.g. \"hello-staging\" gives hello-staging-execution and hello-staging-task."
}

variable "task_role_policy_arns" {
  type        = list(string)
  description = "ARNs of IAM policies to attach to the task role (the app's own AWS permissions). Empty: the app gets none."
  default     = []
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource of the module."
  default     = {}
}
