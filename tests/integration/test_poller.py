"""The local poller behaves like Lambda's event source mapping (against moto's real stream)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.poller import Checkpoint, Invoke, S3Destination, StreamPoller
from tests.conftest import CONFIGURATION, REGION, Stack, create_keyed_table

FLAGS = "FeatureFlags"


class Recorder:
    """A function that records what it was given and answers from a script."""

    def __init__(self, answers: list[Any] | None = None) -> None:
        self.batches: list[list[str]] = []
        self.answers = answers or []

    def __call__(self, event: dict[str, Any]) -> Any:
        self.batches.append([r["dynamodb"]["SequenceNumber"] for r in event["Records"]])
        answer = self.answers.pop(0) if self.answers else {"batchItemFailures": []}
        if isinstance(answer, Exception):
            raise answer
        return answer(event) if callable(answer) else answer


def poller(stack: Stack, invoke: Invoke, *more_streams: str, **options: Any) -> StreamPoller:
    options.setdefault("backoff_seconds", 0.0)
    return StreamPoller(stack.streams, [stack.stream_arn, *more_streams], invoke, **options)


@pytest.fixture
def flags(stack: Stack) -> str:
    """A second table with its stream, keyed on pk and sk; its stream ARN."""
    return create_keyed_table(stack.dynamodb, FLAGS, [("pk", "S"), ("sk", "S")])


def put_flag(stack: Stack, sk: str, enabled: bool) -> None:
    stack.dynamodb.put_item(
        TableName=FLAGS, Item={"pk": {"S": "tenant-1"}, "sk": {"S": sk}, "enabled": {"BOOL": enabled}}
    )


class Sources(list[list[str]]):
    """A function that records, per batch, the table of each record (from its eventSourceARN)."""

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        self.append([r["eventSourceARN"].split(":table/")[1].split("/")[0] for r in event["Records"]])
        return {"batchItemFailures": []}


def test_batches_follow_the_functions_batch_size_in_order(stack: Stack) -> None:
    for number in range(250):
        stack.put(f"K{number}", value=number)
    invoke = Recorder()
    poller(stack, invoke, batch_size=100).poll_once()
    assert [len(batch) for batch in invoke.batches] == [100, 100, 50]
    flat = [int(s) for batch in invoke.batches for s in batch]
    assert flat == sorted(flat) and len(set(flat)) == 250


def test_records_reach_the_function_in_lambdas_shape(stack: Stack) -> None:
    stack.put("K", value=1)
    seen: list[dict[str, Any]] = []

    def remember(event: dict[str, Any]) -> dict[str, Any]:
        seen.extend(event["Records"])
        return {"batchItemFailures": []}

    invoke = Recorder([remember])
    poller(stack, invoke).poll_once()
    [record] = seen
    assert record["eventSourceARN"] == stack.stream_arn
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], float)


def test_batch_item_failure_retries_from_the_lowest_failed_record(stack: Stack) -> None:
    for number in range(5):
        stack.put(f"K{number}", value=number)
    first = Recorder()
    poller(stack, first).poll_once()
    sequence = first.batches[0]
    # the function reports records 3 and 2 (out of order) as not done, then succeeds
    invoke = Recorder([{"batchItemFailures": [{"itemIdentifier": sequence[3]}, {"itemIdentifier": sequence[2]}]}])
    fresh = poller(stack, invoke)
    fresh.poll_once()
    assert invoke.batches == [sequence, sequence[2:]]
    assert fresh.stats.retries == 1 and fresh.stats.gave_up == []


def test_function_error_retries_the_whole_batch_then_gives_up_and_says_so(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    stack.put("K", value=1)
    stack.put("L", value=2)
    invoke = Recorder([RuntimeError("boom")] * 10)
    subject = poller(stack, invoke, max_attempts=3)
    subject.poll_once()
    assert len(invoke.batches) == 3 and all(len(b) == 2 for b in invoke.batches)
    assert subject.stats.gave_up == invoke.batches[0]
    assert "gave up on 2 records after 3 attempts" in caplog.text


def test_every_stream_is_read_and_each_record_carries_its_own_streams_arn(stack: Stack, flags: str) -> None:
    # GIVEN changes on two audited tables
    stack.put("K", value=1)
    put_flag(stack, "flag#a", True)
    stack.put("L", value=2)
    # WHEN one poller reads both streams
    sources = Sources()
    poller(stack, sources, flags).poll_once()
    # THEN every record reached the function, named by its own table's stream, a batch never mixing two
    assert sorted(sources) == [[CONFIGURATION, CONFIGURATION], [FLAGS]]


def test_each_stream_resumes_after_its_own_checkpoint(stack: Stack, flags: str, tmp_path: Path) -> None:
    # GIVEN two streams, read once with a checkpoint file (moto numbers both streams' records alike,
    # in shards of the same ID)
    path = tmp_path / "checkpoint.json"
    for value in range(3):
        stack.put("K", value=value)
    put_flag(stack, "flag#a", True)
    poller(stack, Sources(), flags, checkpoint=Checkpoint(path)).poll_once()
    # WHEN one more change is made, and a poller resumes from the file
    put_flag(stack, "flag#a", False)
    resumed = Sources()
    poller(stack, resumed, flags, checkpoint=Checkpoint(path)).poll_once()
    # THEN it delivers that change alone: nothing of either stream twice, nothing skipped
    assert resumed == [[FLAGS]]


def test_checkpoint_resumes_after_the_last_handled_record(stack: Stack, tmp_path: Path) -> None:
    stack.put("K", value=1)
    path = tmp_path / "checkpoint.json"
    first = Recorder()
    poller(stack, first, checkpoint=Checkpoint(path)).poll_once()
    stack.put("K", value=2)
    second = Recorder()
    poller(stack, second, checkpoint=Checkpoint(path)).poll_once()
    assert len(first.batches[0]) == 1 and len(second.batches[0]) == 1
    assert int(second.batches[0][0]) > int(first.batches[0][0])


def test_batching_window_holds_a_small_batch_back(stack: Stack) -> None:
    stack.put("K", value=1)
    invoke = Recorder()
    waiting = poller(stack, invoke, batching_window=60.0)
    waiting.poll_once()
    assert invoke.batches == []
    stack.put("K", value=2)
    immediate = poller(stack, Recorder(), batching_window=0.0)
    immediate.poll_once()
    assert immediate.stats.records == 2


def nested(levels: int) -> dict[str, Any]:
    """A value ``levels`` lists deep, the innermost holding a string."""
    value: dict[str, Any] = {"S": "bottom"}
    for _ in range(levels):
        value = {"L": [value]}
    return value


# Items moto's table holds though DynamoDB would refuse them: the poller must not choke on any
ODD_ITEMS: dict[str, dict[str, Any]] = {
    "an empty attribute name": {"": {"N": "5"}},  # what `config-audit put K 1 --set =5` stored
    "an empty attribute name inside a map": {"settings": {"M": {"": {"S": "x"}}}},
    "nesting deeper than DynamoDB's 32 levels": {"deep": nested(40)},
}


@pytest.mark.parametrize("odd", sorted(ODD_ITEMS))
def test_a_record_the_table_holds_never_wedges_the_poller_and_later_changes_are_audited(
    stack: Stack, client: Any, odd: str
) -> None:
    # GIVEN an odd item in the table, then ordinary changes after it (binary bytes no text decodes among them)
    stack.dynamodb.put_item(TableName=CONFIGURATION, Item={"key": {"S": "ODD"}, **ODD_ITEMS[odd]})
    stack.dynamodb.put_item(TableName=CONFIGURATION, Item={"key": {"S": "BLOB"}, "value": {"B": b"\xff\x00\xfe"}})
    stack.put("AFTER", value=1)
    # WHEN the poller feeds the function for a few rounds
    subject = poller(stack, lambda event: client.lambda_.invoke("audit_producer", event).payload)
    for _ in range(3):
        subject.poll_once()
    # THEN the odd record was set aside by the function, and every change after it is in Audit
    audited = {entry["itemKey"]: entry["newValue"] for entry in stack.audit_entries()}
    assert audited == {"BLOB": {"key": "BLOB", "value": b"\xff\x00\xfe"}, "AFTER": {"key": "AFTER", "value": 1}}
    assert subject.stats.gave_up == []


class Unreachable:
    """A streams client whose every call fails, as when the moto server is gone."""

    def __init__(self) -> None:
        self.calls = 0

    def describe_stream(self, **_: Any) -> Any:
        self.calls += 1
        raise ConnectionError("Could not connect to the endpoint URL\n(moto is gone)")


def test_a_poll_that_fails_is_one_log_line_and_failing_polls_back_off(caplog: pytest.LogCaptureFixture) -> None:
    # GIVEN a stream the poller cannot reach, WHEN it polls for two seconds
    streams = Unreachable()
    subject = StreamPoller(streams, ["arn:aws:dynamodb:us-east-1:123456789012:table/T/stream/S"], Recorder())
    thread = subject.start()
    time.sleep(2.0)
    subject.stop()
    thread.join(10)
    # THEN each failed poll is one line naming the error, and they come less and less often
    lines = caplog.text.splitlines()
    assert lines and all("poll failed (ConnectionError: Could not connect" in line for line in lines), caplog.text
    assert "(moto is gone)); retrying" in lines[0]
    assert len(lines) == streams.calls <= 6  # 0.2, 0.4, 0.8, 1.6 s apart, not every 0.1 s


FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:config-audit-dev-audit_producer"
# Lambda's: aws/lambda/<mapping UUID>/<shard ID>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<UUID>
RECORD_KEY = re.compile(
    r"aws/lambda/[0-9a-f-]{36}/([^/]+)/(\d{4})/(\d{2})/(\d{2})/(\d{4})-(\d{2})-(\d{2})T\d{2}\.\d{2}\.\d{2}-[0-9a-f-]{36}"
)


def kept_records(s3: Any, bucket: str) -> list[tuple[str, dict[str, Any]]]:
    """Every (key, record) the poller kept in the bucket."""
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return [(o["Key"], json.loads(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())) for o in listed]


@pytest.mark.parametrize("fails", ["raising", "reporting batch item failures"])
def test_a_batch_given_up_on_is_kept_whole_in_the_bucket_as_lambdas_s3_destination_keeps_it(
    stack: Stack, fails: str
) -> None:
    from aws_lambda_powertools.utilities.parser import parse
    from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamLambdaOnFailureDestinationModel

    # GIVEN an on-failure bucket, and three changes the function keeps failing on, from the second
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="failures")
    for number in range(3):
        stack.put(f"K{number}", value=number)
    first = Recorder()
    poller(stack, first).poll_once()
    numbers = first.batches[0]
    answer: Any = (
        RuntimeError("boom") if fails == "raising" else {"batchItemFailures": [{"itemIdentifier": numbers[1]}]}
    )
    invoke = Recorder([answer] * 10)
    # WHEN the poller gives up on it
    subject = poller(stack, invoke, max_attempts=3, destination=S3Destination(s3, "failures", FUNCTION_ARN))
    subject.poll_once()
    # THEN one record is in the bucket, under Lambda's key layout, in Lambda's shape (Powertools' model of it)
    [(key, record)] = kept_records(s3, "failures")
    match = RECORD_KEY.fullmatch(key)
    assert match is not None and match.group(2, 3, 4) == match.group(5, 6, 7)
    parsed = parse(event=record, model=DynamoDBStreamLambdaOnFailureDestinationModel)
    info = parsed.ddb_stream_batch_info
    assert (info.stream_arn, info.shard_id) == (stack.stream_arn, match.group(1))
    given_up = numbers if fails == "raising" else numbers[1:]
    assert (info.start_sequence_number, info.end_sequence_number, info.batch_size) == (
        given_up[0], given_up[-1], len(given_up)
    )  # fmt: skip
    assert (parsed.request_context.condition, parsed.request_context.approximate_invoke_count) == (
        "RetryAttemptsExhausted", 3
    )  # fmt: skip
    assert parsed.request_context.function_arn == FUNCTION_ARN
    assert parsed.response_context.function_error == ("Unhandled" if fails == "raising" else None)
    # AND it holds the batch whole: the records given up on, exactly as the function was handed them
    assert [r["dynamodb"]["SequenceNumber"] for r in record["payload"]["Records"]] == given_up
    assert all(r["eventSourceARN"] == stack.stream_arn for r in record["payload"]["Records"])
    assert subject.stats.gave_up == given_up
