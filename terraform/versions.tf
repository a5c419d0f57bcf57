terraform {
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # Partial configuration: bucket, key, region, use_lockfile (and, for the
  # emulator, use_path_style) come from `terraform init -backend-config=...`.
  # See README.md.
  backend "s3" {}
}
