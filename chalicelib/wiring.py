"""Builds the function's collaborators from its settings, once per distinct settings value."""

from __future__ import annotations

from functools import lru_cache

import boto3
from botocore.config import Config

from chalicelib.audit_repository import DynamoDBAuditRepository
from chalicelib.producer import AuditProducer
from chalicelib.settings import Settings

# botocore's "standard" retry mode retries throttling and 5xx with exponential backoff; the
# repository adds its own bounded loop on top for UnprocessedItems, which are not errors.
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=10)


@lru_cache(maxsize=8)
def dynamodb_client(region: str | None = None) -> object:
    """A DynamoDB client, created on first use (never at import: importing makes no call)."""
    return boto3.client("dynamodb", region_name=region, config=CLIENT_CONFIG)


@lru_cache(maxsize=8)
def producer_for(settings: Settings) -> AuditProducer:
    """The producer for one stage's settings; Lambda keeps it warm between invocations."""
    return AuditProducer(
        repository=DynamoDBAuditRepository(dynamodb_client(), settings.audit_table_name),
        report_batch_item_failures=settings.report_batch_item_failures,
    )
