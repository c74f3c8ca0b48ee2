"""Poison records go to the dead-letter queue with the original record and the reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice.test import Client

from chalicelib import wiring
from tests.conftest import REGION, Stack, project_with


@pytest.fixture
def queue(stack: Stack) -> str:
    return str(boto3.client("sqs", region_name=REGION).create_queue(QueueName="config-audit-dlq")["QueueUrl"])


def dead_letters(url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name=REGION)
    letters: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        letters.extend(json.loads(m["Body"]) for m in batch)
        for message in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return letters


def with_queue(tmp_path: Path, url: str, **more: str) -> Client:
    from app import app

    return Client(app, stage_name="dev", project_dir=project_with(tmp_path, DEAD_LETTER_QUEUE_URL=url, **more))


def poisoned(stack: Stack, count: int) -> dict[str, Any]:
    stack.put("GOOD", value=1)
    event = stack.new_event()
    template = event["Records"][0]
    for number in range(count):
        bad = json.loads(json.dumps(template))
        bad["eventID"] = f"poison-{number}"
        bad["eventName"] = "UPSERT"
        bad["dynamodb"]["SequenceNumber"] = str(int(template["dynamodb"]["SequenceNumber"]) + 1 + number)
        event["Records"].append(bad)
    return event


def test_poison_records_reach_the_queue_with_record_and_reason(stack: Stack, queue: str, tmp_path: Path) -> None:
    event = poisoned(stack, 12)
    response = with_queue(tmp_path, queue).lambda_.invoke("audit_producer", event).payload
    assert response == {"batchItemFailures": []}
    letters = sorted(dead_letters(queue), key=lambda letter: int(letter["sequenceNumber"]))
    assert [letter["eventID"] for letter in letters] == [f"poison-{n}" for n in range(12)]
    assert all("unknown eventName 'UPSERT'" in letter["reason"] for letter in letters)
    assert letters[0]["record"] == event["Records"][1]  # the original record, whole
    assert [e["itemKey"] for e in stack.audit_entries()] == ["GOOD"]


def test_a_poison_record_that_cannot_be_dead_lettered_is_retried_not_lost(
    stack: Stack, queue: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("chalicelib.aws_calls.Backoff.delay", lambda self, attempt: 0.0)
    from botocore.exceptions import ClientError

    def unavailable(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "injected"}}, "SendMessageBatch")

    wiring.client("sqs").meta.events.register("before-call.sqs.SendMessageBatch", unavailable)
    event = poisoned(stack, 1)
    client = with_queue(tmp_path, queue, REPORT_BATCH_ITEM_FAILURES="true")
    response = client.lambda_.invoke("audit_producer", event).payload
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["dynamodb"]["SequenceNumber"]}]}
    assert [e["itemKey"] for e in stack.audit_entries()] == ["GOOD"]


def test_a_record_too_large_for_sqs_is_sent_without_its_body(stack: Stack, queue: str, tmp_path: Path) -> None:
    event = poisoned(stack, 1)
    event["Records"][1]["dynamodb"]["NewImage"]["value"] = {"S": "x" * 300_000}
    with_queue(tmp_path, queue).lambda_.invoke("audit_producer", event)
    [letter] = dead_letters(queue)
    assert letter["record"] is None and letter["recordOmitted"]["bytes"] > 300_000
    assert letter["eventID"] == "poison-0" and "UPSERT" in letter["reason"]
