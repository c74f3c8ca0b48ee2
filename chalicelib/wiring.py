"""Builds the function's collaborators from its settings, once per distinct settings value."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

from chalicelib.actors.recorder import ActorRecorder
from chalicelib.actors.repository import DynamoDBActorRepository
from chalicelib.audit.changes import ChangesReader
from chalicelib.audit.dead_letters import DeadLetters, NoDeadLetters, SqsDeadLetters
from chalicelib.audit.digests import NO_DIGESTS, DigestWriter, S3DigestWriter
from chalicelib.audit.notifications import NoNotifier, Notifier, SnsNotifier
from chalicelib.audit.producer import AuditProducer
from chalicelib.audit.redaction import MIN_KEY_BYTES, NO_REDACTION, Redactor
from chalicelib.audit.repository import DynamoDBAuditRepository
from chalicelib.aws_calls import ConfigurationError, call
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


@lru_cache(maxsize=16)
def client(service: str, region: str | None = None) -> Any:
    """A boto3 client of ``service``, created on first use (never at import: importing makes no
    call), and only for what the stage uses (SNS only with a topic, SSM only with redaction)."""
    return boto3.client(service, region_name=region, config=CLIENT_CONFIG)


@lru_cache(maxsize=8)
def repository_for(settings: Settings, source: str | None = None) -> DynamoDBAuditRepository:
    """The trail of one audited table (None: the first) of a stage's settings; UnknownTable for
    a table the stage does not audit."""
    return DynamoDBAuditRepository(
        client("dynamodb"), settings.table(source).trail, write_concurrency=settings.write_concurrency
    )


def notifier_for(settings: Settings) -> Notifier:
    """SNS where CHANGE_TOPIC_ARN is set; otherwise nothing is published."""
    if settings.change_topic_arn is None:
        return NoNotifier()
    return SnsNotifier(client("sns"), settings.change_topic_arn)


def dead_letters_for(settings: Settings) -> DeadLetters:
    """SQS where DEAD_LETTER_QUEUE_URL is set; otherwise poison records are logged only."""
    if settings.dead_letter_queue_url is None:
        return NoDeadLetters()
    return SqsDeadLetters(client("sqs"), settings.dead_letter_queue_url)


def digests_for(settings: Settings) -> DigestWriter:
    """S3 where DIGEST_BUCKET is set (no S3 client otherwise); otherwise no digest is written."""
    if settings.digest_bucket is None:
        return NO_DIGESTS
    return S3DigestWriter(client("s3"), settings.digest_bucket)


def redaction_key(parameter: str) -> bytes:
    """The HMAC key in the SecureString parameter REDACTION_KEY_PARAMETER names."""
    resource = f"SSM parameter {parameter!r} (REDACTION_KEY_PARAMETER)"
    response = call(client("ssm").get_parameter, resource, Name=parameter, WithDecryption=True)
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
        trails={table: repository_for(settings, table.source) for table in settings.audited_tables},
        report_batch_item_failures=settings.report_batch_item_failures,
        notifier=notifier_for(settings),
        dead_letters=dead_letters_for(settings),
        redactor=redactor_for(settings),
        actor_attribute=settings.actor_attribute,
        digests=digests_for(settings),
    )


@lru_cache(maxsize=8)
def changes_for(settings: Settings) -> ChangesReader:
    """The changes across keys of every audited table of a stage's settings."""
    return ChangesReader(client("dynamodb"), settings, actors_for(settings))


def recorder_for(settings: Settings) -> ActorRecorder:
    """actor_recorder's collaborators; it needs ACTORS_TABLE_NAME."""
    actors = actors_for(settings)
    if actors is None:
        raise ConfigurationError("ACTORS_TABLE_NAME is not set: actor_recorder has nowhere to keep who wrote")
    return ActorRecorder(actors, tuple(table.source for table in settings.audited_tables))


@lru_cache(maxsize=8)
def actors_for(settings: Settings) -> DynamoDBActorRepository | None:
    """AuditActors where ACTORS_TABLE_NAME is set; otherwise no CloudTrail attribution."""
    if settings.actors_table_name is None:
        return None
    return DynamoDBActorRepository(client("dynamodb"), settings.actors_table_name)


def clear() -> None:
    """Forget every cached collaborator (tests; a stage whose settings changed)."""
    for cached in (client, repository_for, producer_for, actors_for, changes_for):
        cached.cache_clear()
