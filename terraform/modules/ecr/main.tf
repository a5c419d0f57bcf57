resource "aws_ecr_repository" "this" {
  #checkov:skip=CKV_AWS_136:AES256 (AWS-managed) encryption at rest is enough for public app images; a customer-managed KMS key adds cost and key policy upkeep for no gain here.
  name = var.name

  # Every build gets a unique tag; promotion adds a new tag to the same manifest.
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.force_delete

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "AES256"
  }

  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "this" {
  repository = aws_ecr_repository.this.name

  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Keep the ${var.keep_images} most recent images"
        selection = {
          tagStatus   = "any"
          countType   = "imageCountMoreThan"
          countNumber = var.keep_images
        }
        action = {
          type = "expire"
        }
      }
    ]
  })
}
