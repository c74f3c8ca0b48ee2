"""Deployment sources: table definitions, the IAM policy generator, templates. Never shipped to Lambda."""
