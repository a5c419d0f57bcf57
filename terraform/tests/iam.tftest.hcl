# modules/iam: two roles, the managed execution policy, optional task policies.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  name = "hello-test"
}

run "roles_are_named_after_the_environment" {
  command = plan

  module {
    source = "./modules/iam"
  }

  assert {
    condition     = aws_iam_role.execution.name == "hello-test-execution" && aws_iam_role.task.name == "hello-test-task"
    error_message = "roles are <name>-execution and <name>-task"
  }
  assert {
    condition     = aws_iam_role_policy_attachment.execution.policy_arn == "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
    error_message = "the execution role gets AWS's managed ECS task execution policy, in the current partition"
  }
  assert {
    condition     = length(aws_iam_role_policy_attachment.task) == 0
    error_message = "the app gets no permissions unless asked"
  }
}

run "task_policies_are_attached_one_each" {
  command = plan

  module {
    source = "./modules/iam"
  }

  variables {
    task_role_policy_arns = ["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess", "arn:aws:iam::123456789012:policy/app"]
  }

  assert {
    condition     = length(aws_iam_role_policy_attachment.task) == 2
    error_message = "one attachment per policy ARN"
  }
}
