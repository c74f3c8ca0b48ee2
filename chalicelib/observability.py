"""Structured JSON logs (Powertools for AWS Lambda), shared by every module of the function."""

from __future__ import annotations

from aws_lambda_powertools import Logger

SERVICE = "config-audit"

logger = Logger(service=SERVICE)
