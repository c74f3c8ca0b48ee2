"""Change notifications through moto's SNS into SQS queues subscribed with filter policies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice.test import Client

from chalicelib import wiring
from chalicelib.audit.notifications import MAX_MESSAGE_BYTES, message_for
from tests.conftest import REGION, Stack, project_with


class Topic:
    def __init__(self) -> None:
        self.sns = boto3.client("sns", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.arn = self.sns.create_topic(Name="config-changes")["TopicArn"]

    def subscribe(self, name: str, filter_policy: dict[str, Any] | None = None) -> str:
        url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attributes = {"RawMessageDelivery": "true"}
        if filter_policy is not None:
            attributes["FilterPolicy"] = json.dumps(filter_policy)
        self.sns.subscribe(TopicArn=self.arn, Protocol="sqs", Endpoint=queue_arn, Attributes=attributes)
        return str(url)

    def received(self, url: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        for _ in range(100):
            batch = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
            if not batch.get("Messages"):
                return messages
            messages.extend(batch["Messages"])
            for message in batch["Messages"]:
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        raise AssertionError("queue never drained")


@pytest.fixture
def topic(stack: Stack) -> Topic:
    return Topic()


@pytest.fixture
def notifying(topic: Topic, tmp_path: Path) -> Client:
    from app import app

    return Client(app, stage_name="dev", project_dir=project_with(tmp_path, CHANGE_TOPIC_ARN=topic.arn))


def test_subscriber_asking_for_one_key_receives_exactly_its_changes(
    stack: Stack, topic: Topic, notifying: Client
) -> None:
    # GIVEN one subscriber for CACHE_TTL_SEC and one for deletions of anything
    ttl_queue = topic.subscribe("ttl-owners", {"itemKey": ["CACHE_TTL_SEC"]})
    deletions = topic.subscribe("deletions", {"changeKind": ["deleted", "expired"]})
    stack.put("CACHE_TTL_SEC", value=3600)
    stack.put("OTHER", value="x")
    stack.put("CACHE_TTL_SEC", value=1800, owner="ops")
    stack.delete("OTHER")
    # WHEN the batch is audited
    assert notifying.lambda_.invoke("audit_producer", stack.new_event()).payload == {"batchItemFailures": []}
    # THEN each subscriber got exactly what its filter asks for, and the body is the entry
    audited = {e["id"]: e for e in stack.audit_entries()}
    ttl = topic.received(ttl_queue)
    assert sorted(json.loads(m["Body"])["id"] for m in ttl) == sorted(
        i for i, e in audited.items() if e["itemKey"] == "CACHE_TTL_SEC"
    )
    assert {m["MessageAttributes"]["changeKind"]["StringValue"] for m in ttl} == {"created", "updated"}
    [deleted] = topic.received(deletions)
    body = json.loads(deleted["Body"])
    assert body["itemKey"] == "OTHER" and body["oldValue"] == {"key": "OTHER", "value": "x"}
    assert deleted["MessageAttributes"]["itemKey"]["StringValue"] == "OTHER"


def test_no_topic_configured_publishes_nothing_and_fails_nothing(stack: Stack, topic: Topic, client: Client) -> None:
    everything = topic.subscribe("everything")
    stack.put("K", value=1)
    assert client.lambda_.invoke("audit_producer", stack.new_event()).payload == {"batchItemFailures": []}
    assert topic.received(everything) == [] and len(stack.audit_entries()) == 1


def test_notifications_go_out_ten_a_call(stack: Stack, topic: Topic, notifying: Client) -> None:
    everything = topic.subscribe("everything")
    for number in range(23):
        stack.put(f"K{number}", value=number)
    calls: list[int] = []
    wiring.client("sns").meta.events.register(
        "provide-client-params.sns.PublishBatch",
        lambda params, **_: calls.append(len(params["PublishBatchRequestEntries"])),
    )
    notifying.lambda_.invoke("audit_producer", stack.new_event())
    assert calls == [10, 10, 3] and len(topic.received(everything)) == 23


def _sns_fails(deferred: int | None) -> Any:
    """SNS answers PublishBatch with every entry Failed (not the sender's fault), ``deferred`` times."""
    state = {"left": deferred}

    def hook(params: dict[str, Any], **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        if state["left"] is not None and state["left"] <= 0:
            return None
        if state["left"] is not None:
            state["left"] -= 1
        ids = [value for name, value in params["body"].items() if name.endswith(".Id")]  # query protocol
        failed = [{"Id": i, "Code": "InternalError", "SenderFault": False, "Message": "injected"} for i in ids]
        return AWSResponse("https://fault", 200, {}, None), {"Successful": [], "Failed": failed}

    return hook


def test_deferred_publishes_are_retried_and_delivered(
    stack: Stack, topic: Topic, notifying: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("chalicelib.aws_calls.Backoff.delay", lambda self, attempt: 0.0)
    everything = topic.subscribe("everything")
    for number in range(5):
        stack.put(f"K{number}", value=number)
    wiring.client("sns").meta.events.register("before-call.sns.PublishBatch", _sns_fails(deferred=2))
    assert notifying.lambda_.invoke("audit_producer", stack.new_event()).payload == {"batchItemFailures": []}
    assert len(topic.received(everything)) == 5


def test_publish_that_keeps_failing_keeps_the_entries_and_asks_for_a_retry(
    stack: Stack, topic: Topic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app import app

    monkeypatch.setattr("chalicelib.aws_calls.Backoff.delay", lambda self, attempt: 0.0)
    partial = Client(
        app,
        stage_name="dev",
        project_dir=project_with(tmp_path, CHANGE_TOPIC_ARN=topic.arn, REPORT_BATCH_ITEM_FAILURES="true"),
    )
    stack.put("K", value=1)
    event = stack.new_event()
    wiring.client("sns").meta.events.register("before-call.sns.PublishBatch", _sns_fails(deferred=None))
    response = partial.lambda_.invoke("audit_producer", event).payload
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["dynamodb"]["SequenceNumber"]}]}
    assert len(stack.audit_entries()) == 1  # the entry is written: a publish failure loses nothing


def test_entry_too_large_for_sns_is_announced_without_its_values() -> None:
    entry: dict[str, Any] = {
        "id": {"S": "a"},
        "itemKey": {"S": "BIG"},
        "modificationTime": {"S": "2024-09-11T09:02:28.000Z"},
        "sequenceNumber": {"S": "1"},
        "newValue": {"M": {"key": {"S": "BIG"}, "value": {"S": "x" * 300_000}}},
    }
    message = message_for(entry)
    assert len(message["Message"].encode()) < MAX_MESSAGE_BYTES
    assert json.loads(message["Message"]) == {
        "id": "a",
        "itemKey": "BIG",
        "modificationTime": "2024-09-11T09:02:28.000Z",
        "sequenceNumber": "1",
        "valuesOmitted": True,
    }
    assert message["MessageAttributes"]["changeKind"]["StringValue"] == "created"
