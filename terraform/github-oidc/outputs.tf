output "role_arn" {
  description = "ARN of the deploy role: the value of the GitHub variable AWS_DEPLOY_ROLE_ARN."
  value       = aws_iam_role.deploy.arn
}

output "role_name" {
  description = "Name of the deploy role."
  value       = aws_iam_role.deploy.name
}

output "oidc_provider_arn" {
  description = "ARN of the GitHub OIDC provider the role trusts (created here, or existing_oidc_provider_arn)."
  value       = local.oidc_provider_arn
}

output "oidc_subjects" {
  description = "OIDC subjects (token.actions.githubusercontent.com:sub) allowed to assume the role."
  value       = local.subjects
}

output "policy_arns" {
  description = "ARNs of the deploy role's managed policies, by concern."
  value       = { for key, policy in aws_iam_policy.deploy : key => policy.arn }
}

output "environments" {
  description = "Environments whose resources and state the role may manage."
  value       = local.environments
}
