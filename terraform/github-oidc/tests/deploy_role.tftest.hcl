# github-oidc: the OIDC provider (created or reused), the exact subjects the role
# trusts, and input validation. `terraform test` from terraform/github-oidc/.

mock_provider "aws" {
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
  mock_resource "aws_iam_openid_connect_provider" {
    override_during = plan
    defaults        = { arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com" }
  }
}

variables {
  github_org    = "acme"
  github_repo   = "hello"
  state_buckets = { staging = "hello-tfstate-staging", production = "hello-tfstate-production" }
}

run "creates_the_oidc_provider_and_trusts_exact_subjects" {
  command = plan

  assert {
    condition     = length(aws_iam_openid_connect_provider.github) == 1
    error_message = "without existing_oidc_provider_arn the provider is created"
  }
  assert {
    condition     = output.oidc_provider_arn == "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    error_message = "the role trusts the provider created here"
  }
  assert {
    condition = jsonencode(output.oidc_subjects) == jsonencode([
      "repo:acme/hello:ref:refs/heads/main",
      "repo:acme/hello:environment:staging",
      "repo:acme/hello:environment:production",
    ])
    error_message = "the main branch and each GitHub environment, no wildcard"
  }
  assert {
    condition     = output.environments == tolist(["production", "staging"])
    error_message = "the environments are the state_buckets keys"
  }
}

run "reuses_an_existing_oidc_provider" {
  command = plan

  variables {
    existing_oidc_provider_arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
  }

  assert {
    condition     = length(aws_iam_openid_connect_provider.github) == 0
    error_message = "an existing provider is not created again (one per account)"
  }
  assert {
    condition     = output.oidc_provider_arn == var.existing_oidc_provider_arn
    error_message = "the role trusts the existing provider"
  }
}

run "a_wildcard_branch_is_refused" {
  command = plan

  variables {
    github_branch = "release/*"
  }

  expect_failures = [var.github_branch]
}

run "no_environment_is_refused" {
  command = plan

  variables {
    state_buckets = {}
  }

  expect_failures = [var.state_buckets]
}
