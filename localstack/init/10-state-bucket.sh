#!/bin/sh
# LocalStack "ready" hook: what the default emulator provides by itself and
# Terraform expects before `terraform init` — the S3 state bucket of the
# `local` environment (terraform/environments.yaml). Safe to run twice.
set -eu
bucket="${SHIP_STATE_BUCKET:-hello-tfstate-local}"
region="${AWS_DEFAULT_REGION:-us-east-1}"
if awslocal s3api head-bucket --bucket "$bucket" >/dev/null 2>&1; then
    echo "state bucket $bucket exists"
else
    awslocal s3api create-bucket --bucket "$bucket" --region "$region" >/dev/null
    awslocal s3api put-bucket-versioning --bucket "$bucket" \
        --versioning-configuration Status=Enabled
    echo "state bucket $bucket created"
fi
