"""Which function audits which table: `chalice deploy` makes one audit_producer function per stream.

Chalice deploys one Lambda function per ``@app.on_dynamodb_record`` registration, subscribed to
the one stream it names. The same name registered twice is refused ("Duplicate function name
detected"); different names on one handler are different functions, each with its own role and
event source mapping, all of which `chalice deploy` creates and `chalice delete` removes. So a
stage auditing several tables deploys one function per table, every one running the
audit_producer handler: the first table's keeps the name ``audit_producer``, each other's is
named after its table (``audit_producer-FeatureFlags``). Each may read its own stream and write
its own trail only, and each trail's append-only policy names its own writer.

Read from a stage's environment alone, so that app.py registers from it at import time (no
network call); infra/ derives each function's policy from the same list.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.audit.routing import table_in_arn
from chalicelib.settings import Settings, SettingsError, stream_arn_for_registration

FIRST_PRODUCER = "audit_producer"

# Lambda function and IAM role names hold at most 64 characters: config-audit-<stage>-<function>
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-]{1,20}")


@dataclass(frozen=True)
class Producer:
    """One audit_producer function: the table it audits, that table's trail, the stream it reads."""

    function: str  # its name in the app; deployed as config-audit-<stage>-<function>
    source: str
    trail: str
    stream_arn: str | None  # None where the stage records no stream for the table


def producer_function(source: str) -> str:
    """The function auditing ``source`` where it is not the first table: named after the table."""
    if _PLAIN_NAME.fullmatch(source):
        return f"{FIRST_PRODUCER}-{source}"
    # a DynamoDB table name may be 255 characters and hold dots; a digest keeps two apart
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", source)[:12]
    return f"{FIRST_PRODUCER}-{slug}-{hashlib.sha256(source.encode()).hexdigest()[:6]}"


def audited_pairs(env: Mapping[str, str]) -> list[tuple[str, str]]:
    """(source, trail) of every audited table, first the default, as the function reads them
    (``Settings``); ValueError naming what is wrong with the stage's variables."""
    try:
        settings = Settings.from_environ(env)
    except SettingsError as error:
        raise ValueError(str(error)) from None
    return [(table.source, table.trail) for table in settings.audited_tables]


def stream_table(stream_arn: str) -> str:
    """The table a DynamoDB stream ARN belongs to (``…:table/NAME/stream/LABEL``), '' if none."""
    table = table_in_arn(stream_arn)
    return table if table is not None and f":table/{table}/stream/" in stream_arn else ""


def producers(env: Mapping[str, str]) -> tuple[Producer, ...]:
    """Every audit_producer function of a stage, in AUDITED_TABLES order; ValueError if none can be named."""
    pairs = audited_pairs(env)
    # AUDITED_STREAM_ARNS lists every audited table's stream; each is found by the table in its ARN
    streams = {stream_table(arn): arn for arn in (a.strip() for a in env.get("AUDITED_STREAM_ARNS", "").split(","))
               if arn}  # fmt: skip
    first_stream = env.get("CONFIGURATION_STREAM_ARN", "").strip() or streams.get(pairs[0][0])
    found = [Producer(FIRST_PRODUCER, pairs[0][0], pairs[0][1], first_stream)]
    found += [Producer(producer_function(source), source, trail, streams.get(source)) for source, trail in pairs[1:]]
    if len({p.function for p in found}) < len(found):
        raise ValueError("AUDITED_TABLES names two tables whose functions would share a name")
    return tuple(found)


def missing_stream_arn(source: str) -> str:
    """A stream ARN that can never exist, naming the table whose stream the stage does not record."""
    return (
        f"arn:aws:dynamodb:us-east-1:000000000000:table/AUDITED_STREAM_ARNS-lacks-{source}"
        "/stream/1970-01-01T00:00:00.000"
    )


def stream_registrations(environ: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """(function, stream ARN) of every registration app.py makes; never raises, never calls AWS.

    The first is app.py's own decorator (CONFIGURATION_STREAM_ARN, as ever). A stage whose
    tables cannot be read registers that one alone: the function then refuses the stage's
    settings with a message of its own.
    """
    env = os.environ if environ is None else environ
    try:
        found = producers(env)
    except ValueError:
        return [(FIRST_PRODUCER, stream_arn_for_registration(env))]
    return [(FIRST_PRODUCER, stream_arn_for_registration(env))] + [
        (p.function, p.stream_arn or missing_stream_arn(p.source)) for p in found[1:]
    ]
