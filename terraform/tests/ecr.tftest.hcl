# modules/ecr: immutable tags, the lifecycle policy's count, force_delete, name rules.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  name = "hello-test"
}

run "tags_are_immutable_and_old_images_expire" {
  command = plan

  module {
    source = "./modules/ecr"
  }

  variables {
    keep_images = 7
  }

  assert {
    condition     = aws_ecr_repository.this.image_tag_mutability == "IMMUTABLE"
    error_message = "a commit tag must never move to other bytes"
  }
  assert {
    condition     = jsondecode(aws_ecr_lifecycle_policy.this.policy).rules[0].selection.countNumber == 7
    error_message = "the lifecycle policy keeps keep_images images"
  }
  assert {
    condition     = aws_ecr_repository.this.force_delete == false
    error_message = "force_delete is off unless asked for"
  }
}

run "an_upper_case_name_is_refused" {
  command = plan

  module {
    source = "./modules/ecr"
  }

  variables {
    name = "Hello"
  }

  expect_failures = [var.name]
}

run "keeping_no_image_is_refused" {
  command = plan

  module {
    source = "./modules/ecr"
  }

  variables {
    keep_images = 0
  }

  expect_failures = [var.keep_images]
}
