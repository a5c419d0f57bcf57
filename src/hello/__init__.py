"""hello: the web application shipped to ECS Fargate."""

from hello.app import create_app

__all__ = ["create_app"]
