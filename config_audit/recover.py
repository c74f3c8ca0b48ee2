"""`config-audit recover`: audit the batches Lambda gave up on, from the on-failure bucket.

Lambda writes a batch it discards into the bucket (FAILURE_BUCKET) as one JSON object under
``aws/lambda/<mapping UUID>/<shard ID>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<UUID>``: the failed
invocation's ``requestContext``, ``responseContext``, ``version``, ``timestamp``,
``DDBStreamBatchInfo`` (shard, sequence range, stream ARN) and, for an S3 destination only, the
whole ``payload`` the function was invoked with (``{"Records": [...]}``). An SQS or SNS copy of a
record holds the metadata alone: its changes are not in it, and it is refused.

Each record's payload goes through the function's own code: on the local stack in this process
(``wiring.producer_for(settings).handle``, redaction and routing included), against AWS by invoking
the deployed function the record names, since the trail's resource policy lets no one but the
producer's role write entries. Entry ids derive from each change, so a change audited before is
written over, never twice. A record done is tagged (RECOVERED_TAG) on the version that was read;
a rerun skips it.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import boto3

from chalicelib.audit.routing import table_in_arn
from chalicelib.settings import AuditedTable, Settings
from config_audit.connection import LOCAL_FAILURE_BUCKET, environment
from config_audit.errors import Answer, NotDone
from config_audit.render import printable
from config_audit.times import parse_time

FAILURE_RECORD_PREFIX = "aws/lambda/"  # where Lambda puts every on-failure record in an S3 destination
RECOVERED_TAG = "config-audit-recovered"  # on a record whose changes are audited: the time it was done


class Unreadable(ValueError):
    """A stored object that is not Lambda's failure record of a DynamoDB stream batch; the message says why."""


@dataclass(frozen=True)
class FailureRecord:
    """One batch Lambda gave up on, as it wrote it: where it came from and, for S3, the batch itself."""

    stream_arn: str
    shard_id: str
    first_sequence_number: str
    last_sequence_number: str
    function_arn: str | None
    payload: dict[str, Any] | None  # {"Records": [...]}; None where the record holds the metadata only

    @property
    def changes(self) -> int:
        return len(self.payload["Records"]) if self.payload is not None else 0


def read_record(body: bytes) -> FailureRecord:
    """Lambda's on-failure record of a DynamoDB stream batch -> FailureRecord; Unreadable if it is not one."""
    try:
        record = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Unreadable("it is not JSON") from None
    info = record.get("DDBStreamBatchInfo") if isinstance(record, dict) else None
    if not isinstance(info, dict):
        raise Unreadable("it holds no DDBStreamBatchInfo: it is not the record of a DynamoDB stream batch")
    fields = ("streamArn", "shardId", "startSequenceNumber", "endSequenceNumber")
    missing = [name for name in fields if not isinstance(info.get(name), str)]
    if missing:
        raise Unreadable(f"its DDBStreamBatchInfo has no {missing[0]}")
    request = record.get("requestContext")
    function_arn = request.get("functionArn") if isinstance(request, dict) else None
    return FailureRecord(
        info["streamArn"],
        info["shardId"],
        info["startSequenceNumber"],
        info["endSequenceNumber"],
        function_arn if isinstance(function_arn, str) else None,
        _payload(record.get("payload")),
    )


def _payload(payload: Any) -> dict[str, Any] | None:
    """The invocation's event: an object, or the same as JSON text; None where there is none."""
    if payload is None:
        return None
    if isinstance(payload, str):  # the event as the text it was sent as
        try:
            payload = json.loads(payload)
        except (ValueError, RecursionError):
            raise Unreadable("its payload is text that is not JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("Records"), list):
        raise Unreadable("its payload is not a Lambda event (no Records list)")
    return payload


# Hands a record's payload to the function's code: None when the batch is done, else why it is not.
Replay = Callable[[FailureRecord], str | None]


class InProcess:
    """The function's own code in this process, as Lambda would run it: the local stack has no Lambda."""

    def __init__(self, settings: Settings, endpoint: str) -> None:
        self.settings = settings
        self.endpoint = endpoint

    def __call__(self, record: FailureRecord) -> str | None:
        from chalicelib import wiring  # the function's collaborators; only where it runs here

        with _environment(environment(self.endpoint)), _function_output_quiet():
            try:
                response = wiring.producer_for(self.settings).handle(record.payload)
            except Exception as error:  # a function error, as Lambda would see it: the batch is not done
                return f"{type(error).__name__}: {error}"
        return _not_done(response)


class DeployedFunction:
    """The deployed function the record names, invoked with the payload: it writes with its own role."""

    def __init__(self, lambda_client: Any) -> None:
        self.client = lambda_client

    def __call__(self, record: FailureRecord) -> str | None:
        if record.function_arn is None:
            return "it names no function (requestContext.functionArn) to hand the batch to"
        response = self.client.invoke(
            FunctionName=record.function_arn, InvocationType="RequestResponse", Payload=json.dumps(record.payload)
        )
        body = response["Payload"].read()
        try:
            answer = json.loads(body) if body else None
        except ValueError:
            answer = None
        if response.get("FunctionError"):
            message = answer.get("errorMessage") if isinstance(answer, dict) else None
            return f"{record.function_arn} failed: {message or response['FunctionError']}"
        return _not_done(answer)


def _not_done(response: Any) -> str | None:
    """Why a batch response says the batch is not done (``batchItemFailures``), or None."""
    failures = response.get("batchItemFailures") if isinstance(response, dict) else None
    if not failures:
        return None
    first = failures[0].get("itemIdentifier") if isinstance(failures[0], dict) else None
    return f"the function reported it not done from sequence number {first}"


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` in os.environ for the function's own clients (the local stack's endpoint), then as before."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _function_output_quiet() -> Iterator[None]:
    """The function's log lines and metrics are for CloudWatch: an operator's stdout holds the answer alone,
    and what went wrong with a batch is the one line recover prints for it."""
    from chalicelib.observability import logger

    level = logger.log_level
    logger.setLevel(logging.CRITICAL)  # the function logs nothing at CRITICAL: its lines stay out
    with _environment({"POWERTOOLS_METRICS_DISABLED": "true"}), contextlib.redirect_stdout(sys.stderr):
        try:
            yield
        finally:
            logger.setLevel(level)


@dataclass
class Recovered:
    """What a run of recover did: per audited table, changes and records; and what it could not do."""

    changes: dict[str, int]
    records: dict[str, int]
    done_before: int = 0
    problems: int = 0

    def add(self, table: str, changes: int) -> None:
        self.changes[table] = self.changes.get(table, 0) + changes
        self.records[table] = self.records.get(table, 0) + 1


def recover(args: argparse.Namespace, settings: Settings, session: dict[str, Any]) -> Answer:
    """Audit every failure record in the stage's bucket not recovered before (of ``--table``, written
    ``--since``); one line per audited table on stdout, one line per record not recovered on stderr
    (exit status 1 where there is one)."""
    since = parse_time(args.since, bound=True) if args.since else None  # checked before anything connects
    local = "endpoint_url" in session
    bucket = settings.failure_bucket or (LOCAL_FAILURE_BUCKET if local else None)
    if bucket is None:
        raise NotDone(
            f"FAILURE_BUCKET is not set for stage {args.stage!r}: set it in its environment_variables to the "
            "stack's FailureBucketName output (Terraform: failure_bucket); a stage `chalice deploy` made has no "
            "on-failure bucket"
        )
    wanted = settings.table(args.table) if args.table else None
    s3 = boto3.client("s3", **session)
    replay: Replay = (
        InProcess(settings, session["endpoint_url"]) if local else DeployedFunction(boto3.client("lambda", **session))
    )
    done = Recovered({}, {})
    for key in _record_keys(s3, bucket, since):
        problem = _recover_one(s3, bucket, key, settings, wanted, replay, done)
        if problem is not None:
            done.problems += 1
            print(f"config-audit: s3://{bucket}/{printable(key)}: {printable(problem)}", file=sys.stderr)
    return Answer(_report(done, settings, bucket), 1 if done.problems else 0)


def _record_keys(s3: Any, bucket: str, since: str | None) -> list[str]:
    """The keys of the bucket's failure records written at or after ``since``, oldest first."""
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=FAILURE_RECORD_PREFIX):
        for stored in page.get("Contents", []):
            written = _entry_time(stored["LastModified"])
            if since is None or written >= since:
                found.append((written, stored["Key"]))
    return [key for _, key in sorted(found)]


def _entry_time(moment: dt.datetime) -> str:
    """A time as the entries and parse_time write it, so that text order is time order."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _recover_one(
    s3: Any,
    bucket: str,
    key: str,
    settings: Settings,
    wanted: AuditedTable | None,
    replay: Replay,
    done: Recovered,
) -> str | None:
    """Recover one record (if it is of the wanted table and not done before); why not, or None."""
    tags = s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
    if any(tag["Key"] == RECOVERED_TAG for tag in tags):
        done.done_before += 1
        return None
    stored = s3.get_object(Bucket=bucket, Key=key)
    try:
        record = read_record(stored["Body"].read())
    except Unreadable as unreadable:
        return f"not a failure record Lambda wrote: {unreadable}"
    table = _audited_table(record, settings)
    if table is None:
        return (
            f"its stream {record.stream_arn} is not of a table the stage audits (AUDITED_TABLES): "
            "recover it with the stage that audits it (--stage)"
        )
    if wanted is not None and table != wanted:
        return None
    if record.payload is None:
        return (
            f"it holds no payload, only the batch's metadata (an SQS or SNS on-failure record): its changes, "
            f"shard {record.shard_id} sequence numbers {record.first_sequence_number} to "
            f"{record.last_sequence_number} of {record.stream_arn}, are not in it; nothing recovered, not marked"
        )
    why = replay(record)
    if why is not None:
        return f"the batch failed again ({why}): not marked done; run recover again once that is fixed"
    version = {"VersionId": stored["VersionId"]} if stored.get("VersionId") else {}
    now = _entry_time(dt.datetime.now(dt.UTC))
    s3.put_object_tagging(
        Bucket=bucket, Key=key, **version, Tagging={"TagSet": [*tags, {"Key": RECOVERED_TAG, "Value": now}]}
    )
    done.add(table.source, record.changes)
    return None


def _audited_table(record: FailureRecord, settings: Settings) -> AuditedTable | None:
    """The audited table a record's batch goes to, routed as the function routes it; None if none does."""
    tables = settings.audited_tables
    if len(tables) == 1:  # one table: every record is its, whatever the ARN says (the function's rule)
        return tables[0]
    source = table_in_arn(record.stream_arn)
    return next((table for table in tables if table.source == source), None)


def _report(done: Recovered, settings: Settings, bucket: str) -> str:
    lines = [
        f"{table.source}: {_count(done.changes[table.source], 'change')} recovered from "
        f"{_count(done.records[table.source], 'failure record')}"
        for table in settings.audited_tables
        if table.source in done.records
    ]
    if lines:
        return "\n".join(lines)
    if done.problems:
        return f"nothing recovered from s3://{bucket}"
    before = f" ({_count(done.done_before, 'failure record')} recovered before)" if done.done_before else ""
    return f"nothing to recover in s3://{bucket}{before}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
