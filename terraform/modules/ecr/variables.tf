variable "name" {
  type        = string
  description = "Name of the ECR repository, e.g. \"hello-staging\"."

  validation {
    condition     = can(regex("^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$", var.name)) && length(var.name) <= 256
    error_message = "name must be a valid ECR repository name (lower case letters, digits, and . _ - / separators)."
  }
}

variable "keep_images" {
  type        = number
  description = "Number of most recent images the lifecycle policy keeps; older ones are expired."
  default     = 50

  validation {
    condition     = var.keep_images >= 1 && floor(var.keep_images) == var.keep_images
    error_message = "keep_images must be a positive integer."
  }
}

variable "force_delete" {
  type        = bool
  description = "Let `terraform destroy` delete the repository even when it still holds images (meant for throwaway or emulator environments)."
  default     = false
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource of the module."
  default     = {}
}
