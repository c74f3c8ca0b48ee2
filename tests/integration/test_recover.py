"""Never lose a change: a batch Lambda gave up on, kept whole in the on-failure bucket, is audited by
`config-audit recover` exactly once, through the function's own code; a rerun does nothing; a record
with no payload, or a batch that fails again, is one line and is left for the next run."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from chalice.test import Client

from chalicelib import wiring
from chalicelib.audit.entries import id_of
from chalicelib.audit.plan import plan_batch
from config_audit.cli import main
from config_audit.recover import RECOVERED_TAG
from local.poller import GaveUp, S3Destination
from local.stack import LOCAL_STAGE, LocalStack
from local.stream import read_all
from tests.conftest import REGION, ROOT, Stack, project_with

PRODUCER = "arn:aws:lambda:us-east-1:123456789012:function:config-audit-dev-audit_producer"
FLAG = {"pk": {"S": "tenant-1"}, "sk": {"S": "flag#dark-mode"}}


@pytest.fixture
def local() -> Iterator[LocalStack]:
    with LocalStack() as stack:
        yield stack


def changes(stack: LocalStack, source: str | None = None) -> list[dict[str, Any]]:
    """Every record of an audited table's stream so far, in Lambda's shape (None: the seed's table)."""
    table = stack.audited_table(source).source
    return list(read_all(stack.streams, stack.stream_arns[table]))


def keep(stack: LocalStack, records: list[dict[str, Any]], source: str | None = None) -> str:
    """What Lambda does with a batch it gives up on: its record, payload and all, into the bucket; the key."""
    table = stack.audited_table(source).source
    shard = records[0]["dynamodb"]["SequenceNumber"][:4]  # any shard ID: recover reads it, never uses it
    kept = S3Destination(stack.client("s3"), stack.failure_bucket, PRODUCER).send(
        GaveUp(stack.stream_arns[table], f"shardId-{shard}", records, attempts=3, function_error=True)
    )
    return kept.split("/", 3)[3]


def planned_ids(records: list[dict[str, Any]]) -> list[str]:
    """The ids of the entries the function derives from these records: each exactly once in a sound trail."""
    return [id_of(entry) for changes in plan_batch({"Records": records}).records for entry in changes.entries]


def trail_ids(stack: LocalStack, source: str | None = None) -> list[str]:
    return [entry["id"] for entry in stack.audit_entries(source)]


def tags(stack: LocalStack, key: str) -> dict[str, str]:
    found = stack.client("s3").get_object_tagging(Bucket=stack.failure_bucket, Key=key)["TagSet"]
    return {tag["Key"]: tag["Value"] for tag in found}


def run(stack: LocalStack, capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str, str]:
    """config-audit against the local stack's moto server: (exit status, stdout, stderr)."""
    capsys.readouterr()
    code = main(["--endpoint", stack.endpoint, *arguments])
    out, err = capsys.readouterr()
    return code, out, err


def test_recover_audits_every_change_of_a_batch_lambda_gave_up_on_once_and_a_rerun_does_nothing(
    local: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN four changes, of which the function audited the first before Lambda gave up on the batch
    local.configuration.put_item(Item={"key": "CACHE_TTL_SEC", "value": 3600})
    local.configuration.put_item(Item={"key": "CACHE_TTL_SEC", "value": 1800, "password": "p1"})
    local.configuration.put_item(Item={"key": "OLD", "value": 1})
    local.configuration.delete_item(Key={"key": "OLD"})
    records = changes(local)
    wiring.producer_for(local._settings).handle({"Records": records[:1]})
    key = keep(local, records)
    # WHEN the operator runs recover
    code, out, err = run(local, capsys, "recover")
    # THEN it says what it recovered, per table, and nothing else
    assert (code, out, err) == (0, "Configuration: 4 changes recovered from 1 failure record\n", "")
    # AND every change is in the trail exactly once, the one audited before included
    ids = trail_ids(local)
    assert sorted(ids) == sorted(planned_ids(records)) and len(ids) == len(set(ids)) == 5
    # AND through the function's own code: the secret is redacted, as the function redacts it
    password = next(entry for entry in local.audit_entries() if entry.get("updatedAttribute") == "password")
    assert password["newValue"].startswith("redacted:hmac-sha256:")
    # AND the record is marked done, kept as Lambda wrote it (the bucket keeps the evidence)
    assert RECOVERED_TAG in tags(local, key)
    # WHEN it runs again, THEN it does nothing, and says so
    assert run(local, capsys, "recover") == (
        0,
        f"nothing to recover in s3://{local.failure_bucket} (1 failure record recovered before)\n",
        "",
    )
    assert sorted(trail_ids(local)) == sorted(ids)


def test_a_record_with_no_payload_is_refused_in_one_line_and_the_others_are_recovered(
    local: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a record as an SQS destination got it (the batch's metadata alone), and a whole one beside it
    local.configuration.put_item(Item={"key": "K", "value": 1})
    [record] = changes(local)
    whole = keep(local, [record])
    sequence = record["dynamodb"]["SequenceNumber"]
    metadata = {
        "requestContext": {"requestId": "316aa6d0-8154-xmpl-9af7-85d5f4a6bc81", "functionArn": PRODUCER,
                           "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 11},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": "2019-11-14T00:13:49Z",
        "DDBStreamBatchInfo": {"shardId": "shardId-00000001573689847184-864758bb", "startSequenceNumber": sequence,
                               "endSequenceNumber": sequence, "approximateArrivalOfFirstRecord": "2019-11-14T00:13:19Z",
                               "approximateArrivalOfLastRecord": "2019-11-14T00:13:19Z", "batchSize": 1,
                               "streamArn": local.stream_arn},
    }  # fmt: skip
    sqs_era = "aws/lambda/0000/shardId-00000001573689847184-864758bb/2019/11/14/2019-11-14T00.13.49-sqs"
    local.client("s3").put_object(Bucket=local.failure_bucket, Key=sqs_era, Body=json.dumps(metadata).encode())
    # WHEN the operator runs recover
    code, out, err = run(local, capsys, "recover")
    # THEN the whole one is recovered, and the other refused in one line naming what is lost, exit status 1
    assert (code, out) == (1, "Configuration: 1 change recovered from 1 failure record\n")
    assert err == (
        f"config-audit: s3://{local.failure_bucket}/{sqs_era}: it holds no payload, only the batch's metadata "
        "(an SQS or SNS on-failure record): its changes, shard shardId-00000001573689847184-864758bb sequence "
        f"numbers {sequence} to {sequence} of {local.stream_arn}, are not in it; nothing recovered, not marked\n"
    )
    assert RECOVERED_TAG in tags(local, whole) and RECOVERED_TAG not in tags(local, sqs_era)
    # AND a rerun refuses it again, the same way, and recovers nothing twice
    code, out, err = run(local, capsys, "recover")
    assert (code, out, err.count("\n")) == (1, f"nothing recovered from s3://{local.failure_bucket}\n", 1)
    assert trail_ids(local) == planned_ids([record])


def test_an_object_that_is_not_a_failure_record_is_refused_in_one_line(
    local: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    stray = "aws/lambda/stray/notes.txt"
    local.client("s3").put_object(Bucket=local.failure_bucket, Key=stray, Body=b"not a record")
    assert run(local, capsys, "recover") == (
        1,
        f"nothing recovered from s3://{local.failure_bucket}\n",
        f"config-audit: s3://{local.failure_bucket}/{stray}: not a failure record Lambda wrote: it is not JSON\n",
    )


def test_lambdas_documented_record_with_its_payload_as_json_text_is_recovered(
    local: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a record in the shape Lambda's docs show, the payload being the invocation's event as JSON text
    local.configuration.put_item(Item={"key": "K", "value": 1})
    records = changes(local)
    record = json.loads(
        local.client("s3").get_object(Bucket=local.failure_bucket, Key=keep(local, records))["Body"].read()
    )
    record["payload"] = json.dumps({"Records": records})
    key = "aws/lambda/3f8b-mapping/shardId-1/2024/09/11/2024-09-11T09.02.28-0e1b"
    local.client("s3").put_object(Bucket=local.failure_bucket, Key=key, Body=json.dumps(record).encode())
    # WHEN recovered, THEN both copies of the batch give its one change once
    assert run(local, capsys, "recover") == (0, "Configuration: 2 changes recovered from 2 failure records\n", "")
    assert trail_ids(local) == planned_ids(records)


class AuditTableGone:
    """The Audit table taken away: every BatchWriteItem of the function's own client fails as DynamoDB's would."""

    def __init__(self) -> None:
        self.client = wiring.client("dynamodb")  # the client the function writes with (cached, as in Lambda)
        self.client.meta.events.register("before-call.dynamodb.BatchWriteItem", self._fail)

    @staticmethod
    def _fail(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "ResourceNotFoundException", "Message": "Requested resource not found"}},
            "BatchWriteItem",
        )

    def back(self) -> None:
        self.client.meta.events.unregister("before-call.dynamodb.BatchWriteItem", self._fail)


def test_a_batch_that_fails_again_is_one_line_exit_status_1_and_left_for_the_next_run(
    local: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a batch Lambda gave up on, and the Audit table still away
    local.configuration.put_item(Item={"key": "K", "value": 1})
    records = changes(local)
    key = keep(local, records)
    outage = AuditTableGone()
    # WHEN the operator runs recover
    code, out, err = run(local, capsys, "recover")
    # THEN it says the batch failed again and why, in one line, and leaves the record unmarked
    assert (code, out) == (1, f"nothing recovered from s3://{local.failure_bucket}\n")
    assert err == (
        f"config-audit: s3://{local.failure_bucket}/{key}: the batch failed again (ConfigurationError: Audit table "
        "'Audit' (AUDIT_TABLE_NAME) does not exist (or is not active) in this account and region: "
        "ResourceNotFoundException): not marked done; run recover again once that is fixed\n"
    )
    assert RECOVERED_TAG not in tags(local, key) and trail_ids(local) == []
    # WHEN the table is back and recover runs again, THEN the batch is audited
    outage.back()
    assert run(local, capsys, "recover") == (0, "Configuration: 1 change recovered from 1 failure record\n", "")
    assert trail_ids(local) == planned_ids(records)


def test_table_and_since_choose_which_records_are_recovered(capsys: pytest.CaptureFixture[str]) -> None:
    with LocalStack(LOCAL_STAGE) as local:
        # GIVEN a batch of FeatureFlags kept, then (later) one of Configuration
        local.dynamodb.put_item(TableName="FeatureFlags", Item={**FLAG, "enabled": {"BOOL": True}})
        flags = changes(local, "FeatureFlags")
        keep(local, flags, "FeatureFlags")
        time.sleep(1.1)  # S3 keeps the time an object was written to the second
        between = dt.datetime.now(dt.UTC).isoformat()
        time.sleep(1.1)
        local.configuration.put_item(Item={"key": "K", "value": 1})
        seed = changes(local)
        keep(local, seed)
        # WHEN the operator asks for FeatureFlags' records written since then, THEN there are none
        since = ("--since", between)
        assert run(local, capsys, "--stage", LOCAL_STAGE, "recover", "--table", "FeatureFlags", *since) == (
            0,
            f"nothing to recover in s3://{local.failure_bucket}\n",
            "",
        )
        # WHEN for every table's since then, THEN only Configuration's batch is recovered
        assert run(local, capsys, "--stage", LOCAL_STAGE, "recover", *since) == (
            0,
            "Configuration: 1 change recovered from 1 failure record\n",
            "",
        )
        assert (trail_ids(local), trail_ids(local, "FeatureFlags")) == (planned_ids(seed), [])
        # WHEN for FeatureFlags at any time, THEN its batch goes to its own trail
        assert run(local, capsys, "--stage", LOCAL_STAGE, "--table", "FeatureFlags", "recover") == (
            0,
            "FeatureFlags: 1 change recovered from 1 failure record\n",
            "",
        )
        assert trail_ids(local, "FeatureFlags") == planned_ids(flags)


@pytest.mark.parametrize(
    ("since", "message"),
    [
        (
            "yesterday",
            "time 'yesterday' is not ISO 8601 with a zone, such as 2024-09-11T09:03:00Z, or relative to now: "
            "now, 90s, 15m, 2h or 7d (a positive whole number and s, m, h or d)",
        ),
        ("2024-09-11T09:03:00", "time '2024-09-11T09:03:00' has no zone: add Z for UTC, or an offset such as +02:00"),
    ],
)
def test_a_bad_since_is_one_line_before_anything_is_read(
    local: LocalStack, capsys: pytest.CaptureFixture[str], since: str, message: str
) -> None:
    assert run(local, capsys, "recover", "--since", since) == (1, "", f"config-audit: {message}\n")


def test_a_stage_with_no_failure_bucket_is_told_where_to_find_its_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the dev stage against AWS (no endpoint), which names no FAILURE_BUCKET
    capsys.readouterr()
    code = main(["--project-dir", project_with(tmp_path), "recover"])
    # THEN one line says what to set, and nothing is sent anywhere
    assert code == 1
    assert capsys.readouterr().err == (
        "config-audit: FAILURE_BUCKET is not set for stage 'dev': set it in its environment_variables to the "
        "stack's FailureBucketName output (Terraform: failure_bucket); a stage `chalice deploy` made has no "
        "on-failure bucket\n"
    )


@contextlib.contextmanager
def in_cloudwatch() -> Iterator[None]:
    """The deployed function's logs and metrics go to CloudWatch, not to the operator's terminal."""
    from chalicelib.observability import logger

    handler = logger.registered_handler
    original = handler.setStream(io.StringIO())  # type: ignore[attr-defined]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        handler.setStream(original)  # type: ignore[attr-defined]


class DeployedProducer:
    """Lambda's Invoke for the one deployed producer: the handler on the stage's settings, answered as Lambda
    answers (a function error as FunctionError and its message); any other function does not exist."""

    def __init__(self, client: Client, function_arn: str) -> None:
        self.client, self.function_arn = client, function_arn

    def invoke(self, FunctionName: str, InvocationType: str, Payload: str) -> dict[str, Any]:
        if FunctionName != self.function_arn or InvocationType != "RequestResponse":
            raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": FunctionName}}, "Invoke")
        try:
            with in_cloudwatch():
                answer = self.client.lambda_.invoke("audit_producer", json.loads(Payload)).payload
        except Exception as error:
            body = {"errorMessage": str(error), "errorType": type(error).__name__}
            return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": io.BytesIO(json.dumps(body).encode())}
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(answer).encode())}


def test_against_aws_the_deployed_function_the_record_names_audits_the_batch_with_its_own_role(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a stage with its on-failure bucket in AWS (moto), a batch Lambda gave up on in it
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="failures")
    stack.put("K", value=1)
    records = stack.new_records()
    S3Destination(s3, "failures", PRODUCER).send(GaveUp(stack.stream_arn, "shardId-1", records, 11, True))
    project = project_with(tmp_path, FAILURE_BUCKET="failures")
    # AND the deployed producer, which the trail's resource policy lets write (an operator may not)
    from app import app

    deployed = DeployedProducer(Client(app, stage_name="dev", project_dir=project), PRODUCER)
    real_client = boto3.client
    monkeypatch.setattr(
        boto3, "client", lambda service, **kw: deployed if service == "lambda" else real_client(service, **kw)
    )
    # WHEN the operator runs recover against AWS, the Audit table away at first
    outage = AuditTableGone()
    capsys.readouterr()
    assert main(["--project-dir", project, "recover"]) == 1
    # THEN the function's failure is the one line, and the record is left
    err = capsys.readouterr().err
    assert err.startswith("config-audit: s3://failures/aws/lambda/") and err.count("\n") == 1
    assert f"the batch failed again ({PRODUCER} failed: Audit table 'Audit' (AUDIT_TABLE_NAME) does not exist" in err
    # WHEN the table is back, THEN the deployed function audits the batch, and the record is marked
    outage.back()
    assert main(["--project-dir", project, "recover"]) == 0
    assert capsys.readouterr().out == "Configuration: 1 change recovered from 1 failure record\n"
    assert [entry["id"] for entry in stack.audit_entries()] == planned_ids(records)
    [stored] = s3.list_objects_v2(Bucket="failures")["Contents"]
    assert RECOVERED_TAG in {t["Key"] for t in s3.get_object_tagging(Bucket="failures", Key=stored["Key"])["TagSet"]}


@pytest.mark.slow
def test_an_outage_longer_than_the_retries_loses_no_change_once_recovered(local: LocalStack) -> None:
    # GIVEN the local stack auditing, as Lambda would, with a few quick retries
    poller = local.start_poller(max_attempts=3, backoff_seconds=0.05)
    local.configuration.put_item(Item={"key": "BEFORE", "value": 1})
    wait_until(lambda: len(local.audit_entries()) == 1)
    # WHEN the Audit table is away long enough for the poller to give up on what changes meanwhile
    outage = AuditTableGone()
    local.configuration.put_item(Item={"key": "BEFORE", "value": 2})
    local.configuration.put_item(Item={"key": "DURING", "value": "x", "note": "made in the outage"})
    local.configuration.delete_item(Key={"key": "BEFORE"})
    wait_until(lambda: len(poller.stats.gave_up) == 3)
    outage.back()
    local.configuration.put_item(Item={"key": "AFTER", "value": 1})
    wait_until(lambda: len(local.audit_entries()) == 2)
    # THEN the trail has a hole: the changes made in the outage are not in it, but kept in the bucket
    records = changes(local)
    assert len(records) == 5 and len(trail_ids(local)) == 2
    assert len(local.client("s3").list_objects_v2(Bucket=local.failure_bucket)["Contents"]) >= 1
    # WHEN the operator runs recover, as installed, against the local stack
    command = [str(Path(sys.executable).with_name("config-audit")), "--endpoint", local.endpoint, "recover"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    # THEN every change is audited exactly once: the trail holds exactly the entries the changes give
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert done.stdout.startswith("Configuration: 3 changes recovered from ")
    ids = trail_ids(local)
    assert sorted(ids) == sorted(planned_ids(records)) and len(ids) == len(set(ids))
    # AND a second recover recovers nothing
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert (again.returncode, again.stderr) == (0, "")
    assert again.stdout.startswith(f"nothing to recover in s3://{local.failure_bucket} (")
    assert sorted(trail_ids(local)) == sorted(ids)


def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
