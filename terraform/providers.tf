# Credentials and, for emulator environments, the endpoint (AWS_ENDPOINT_URL)
# come from the environment; no endpoint is written here.
provider "aws" {
  region = local.settings.aws_region

  skip_credentials_validation = local.emulator
  skip_requesting_account_id  = local.emulator
  skip_metadata_api_check     = local.emulator
  s3_use_path_style           = local.emulator

  default_tags {
    tags = local.tags
  }
}
