"""Builds the function's collaborators from its settings, once per distinct settings value."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

from chalicelib.actor_recorder import ActorRecorder
from chalicelib.actor_repository import DynamoDBActorRepository
from chalicelib.audit_repository import DynamoDBAuditRepository
from chalicelib.aws_calls import ConfigurationError, call
from chalicelib.dead_letters import DeadLetters, NoDeadLetters, SqsDeadLetters
from chalicelib.notifications import NoNotifier, Notifier, SnsNotifier
from chalicelib.producer import AuditProducer
from chalicelib.redaction import MIN_KEY_BYTES, NO_REDACTION, Redactor
from chalicelib.settings import MAX_WRITE_CONCURRENCY, Settings

# botocore's "standard" retry mode retries throttling and 5xx with exponential backoff; the
# repository adds its own bounded loop on top for UnprocessedItems, which are not errors.
# One connection per writer thread at most (urllib3 discards connections past the pool's size).
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=5,
    read_timeout=10,
    max_pool_connections=MAX_WRITE_CONCURRENCY,
)


@lru_cache(maxsize=8)
def dynamodb_client(region: str | None = None) -> Any:
    """A DynamoDB client, created on first use (never at import: importing makes no call)."""
    return boto3.client("dynamodb", region_name=region, config=CLIENT_CONFIG)


@lru_cache(maxsize=8)
def sns_client(region: str | None = None) -> Any:
    """An SNS client, created only where a topic is configured."""
    return boto3.client("sns", region_name=region, config=CLIENT_CONFIG)


@lru_cache(maxsize=8)
def repository_for(settings: Settings) -> DynamoDBAuditRepository:
    """The Audit table of one stage's settings."""
    return DynamoDBAuditRepository(
        dynamodb_client(), settings.audit_table_name, write_concurrency=settings.write_concurrency
    )


def notifier_for(settings: Settings) -> Notifier:
    """SNS where CHANGE_TOPIC_ARN is set; otherwise nothing is published."""
    if settings.change_topic_arn is None:
        return NoNotifier()
    return SnsNotifier(sns_client(), settings.change_topic_arn)


@lru_cache(maxsize=8)
def sqs_client(region: str | None = None) -> Any:
    """An SQS client, created only where a dead-letter queue is configured."""
    return boto3.client("sqs", region_name=region, config=CLIENT_CONFIG)


def dead_letters_for(settings: Settings) -> DeadLetters:
    """SQS where DEAD_LETTER_QUEUE_URL is set; otherwise poison records are logged only."""
    if settings.dead_letter_queue_url is None:
        return NoDeadLetters()
    return SqsDeadLetters(sqs_client(), settings.dead_letter_queue_url)


@lru_cache(maxsize=8)
def ssm_client(region: str | None = None) -> Any:
    """An SSM client, created only where attributes are redacted."""
    return boto3.client("ssm", region_name=region, config=CLIENT_CONFIG)


def redaction_key(parameter: str) -> bytes:
    """The HMAC key in the SecureString parameter REDACTION_KEY_PARAMETER names."""
    resource = f"SSM parameter {parameter!r} (REDACTION_KEY_PARAMETER)"
    response = call(ssm_client().get_parameter, resource, Name=parameter, WithDecryption=True)
    key = str(response["Parameter"]["Value"]).encode()
    if len(key) < MIN_KEY_BYTES:
        raise ConfigurationError(f"{resource} holds a key shorter than {MIN_KEY_BYTES} bytes")
    return key


def redactor_for(settings: Settings) -> Redactor:
    """Digests for the attributes REDACT_ATTRIBUTES names; the key is read on first use."""
    parameter = settings.redaction_key_parameter
    if not settings.redact_attributes or parameter is None:
        return NO_REDACTION
    return Redactor(settings.redact_attributes, lambda: redaction_key(parameter))


@lru_cache(maxsize=8)
def producer_for(settings: Settings) -> AuditProducer:
    """The producer for one stage's settings; Lambda keeps it warm between invocations."""
    return AuditProducer(
        repository=repository_for(settings),
        report_batch_item_failures=settings.report_batch_item_failures,
        notifier=notifier_for(settings),
        dead_letters=dead_letters_for(settings),
        redactor=redactor_for(settings),
        actor_attribute=settings.actor_attribute,
    )


def recorder_for(settings: Settings) -> ActorRecorder:
    """actor_recorder's collaborators; it needs ACTORS_TABLE_NAME."""
    actors = actors_for(settings)
    if actors is None:
        raise ConfigurationError("ACTORS_TABLE_NAME is not set: actor_recorder has nowhere to keep who wrote")
    return ActorRecorder(actors, settings.configuration_table_name)


@lru_cache(maxsize=8)
def actors_for(settings: Settings) -> DynamoDBActorRepository | None:
    """AuditActors where ACTORS_TABLE_NAME is set; otherwise no CloudTrail attribution."""
    if settings.actors_table_name is None:
        return None
    return DynamoDBActorRepository(dynamodb_client(), settings.actors_table_name)


def clear() -> None:
    """Forget every cached collaborator (tests; a stage whose settings changed)."""
    for cached in (dynamodb_client, sns_client, sqs_client, ssm_client, repository_for, producer_for, actors_for):
        cached.cache_clear()
