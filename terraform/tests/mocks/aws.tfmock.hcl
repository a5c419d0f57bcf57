# Values the mocked aws provider returns, shared by every test file
# (`mock_provider "aws" { source = "./tests/mocks" }`). Data sources are read at
# plan time; the load balancer's are generated at plan time too
# (override_during), so that URLs and listener ARNs can be asserted in plan mode.
# Everything else computed stays unknown at plan, as against AWS.

mock_data "aws_region" {
  defaults = {
    name = "us-east-1"
  }
}

mock_data "aws_partition" {
  defaults = {
    partition = "aws"
  }
}

mock_data "aws_availability_zones" {
  defaults = {
    names = ["us-east-1a", "us-east-1b"]
  }
}

mock_data "aws_caller_identity" {
  defaults = {
    account_id = "123456789012"
  }
}

mock_data "aws_iam_policy_document" {
  defaults = {
    json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
  }
}

mock_resource "aws_lb" {
  override_during = plan
  defaults = {
    arn      = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/hello-test/0123456789abcdef"
    dns_name = "hello-test-123.us-east-1.elb.amazonaws.com"
    zone_id  = "Z35SXDOTRQ7X7K"
  }
}
