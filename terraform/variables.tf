variable "environment" {
  type        = string
  description = "Name of the environment to deploy: a key of `environments` in environments.yaml (e.g. local, staging)."

  validation {
    condition     = contains(keys(local.environments), var.environment)
    error_message = "Unknown environment \"${var.environment}\": valid environments are ${join(", ", sort(keys(local.environments)))}."
  }
}

variable "image" {
  type        = string
  description = "Container image of the first task definition revision, ideally digest-pinned (<repo>@sha256:...). Later image rollouts happen outside Terraform."

  validation {
    condition     = length(trimspace(var.image)) > 0
    error_message = "image must not be empty."
  }
}

variable "environments_file" {
  type        = string
  description = "Path of the environment settings file. Empty: environments.yaml beside this module (ship passes SHIP_ENVIRONMENTS_FILE here when it is set)."
  default     = ""
}
