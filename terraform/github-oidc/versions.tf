terraform {
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # No backend block: local state by default. This stack is applied once per
  # AWS account by an administrator; see README.md for keeping its state in S3.
}
