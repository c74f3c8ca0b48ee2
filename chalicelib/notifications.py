"""Change notifications: every written entry published to SNS, filterable by key and kind."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from chalicelib.aws_calls import AwsAdapter, Backoff, CallFailed
from chalicelib.changes import Entry, change_kind
from chalicelib.images import item_json
from chalicelib.observability import logger

PUBLISH_BATCH_LIMIT = 10  # PublishBatch's maximum entries per call
MAX_MESSAGE_BYTES = 256 * 1024  # SNS's limit for a message with its attributes


@dataclass(slots=True)
class PublishResult:
    """Ids not published (transient: retry later) and how many calls it took."""

    unpublished: set[str] = field(default_factory=set)
    publish_calls: int = 0
    dropped: int = 0
    published: int = 0


class Notifier(Protocol):
    def publish(self, entries: Sequence[Entry]) -> PublishResult:
        """Publish every entry; report the ones that could not be published yet."""
        ...


class NoNotifier:
    """No topic configured: nothing is published and nothing fails."""

    def publish(self, entries: Sequence[Entry]) -> PublishResult:
        return PublishResult()


def message_for(entry: Entry) -> dict[str, Any]:
    """The PublishBatch request entry of one audit entry.

    The body is the entry as JSON. An entry too large for SNS (entries reach 400 KB, messages
    256 KB) is sent without its values and with ``"valuesOmitted": true``: subscribers still
    learn of the change and read the values from ``GET /audit/{key}``.
    """
    attributes = {
        "itemKey": {"DataType": "String", "StringValue": entry["itemKey"]["S"]},
        "changeKind": {"DataType": "String", "StringValue": change_kind(entry).value},
    }
    body = item_json(entry)
    if len(body.encode()) + 200 > MAX_MESSAGE_BYTES:
        slim = {name: value for name, value in entry.items() if name not in ("oldValue", "newValue")}
        body = item_json({**slim, "valuesOmitted": {"BOOL": True}})
    return {"Id": entry["id"]["S"], "Message": body, "MessageAttributes": attributes}


class SnsNotifier(AwsAdapter):
    """Publishes entries to one topic with PublishBatch, 10 a call, retrying what SNS defers."""

    def __init__(self, client: Any, topic_arn: str, backoff: Backoff | None = None) -> None:
        super().__init__(client, f"SNS topic {topic_arn!r} (CHANGE_TOPIC_ARN)", backoff)
        self._topic = topic_arn

    def publish(self, entries: Sequence[Entry]) -> PublishResult:
        result = PublishResult()
        for start in range(0, len(entries), PUBLISH_BATCH_LIMIT):
            group = [message_for(entry) for entry in entries[start : start + PUBLISH_BATCH_LIMIT]]
            left = self._publish_group(group, result)
            if left:
                result.unpublished.update(message["Id"] for message in left)
                result.unpublished.update(e["id"]["S"] for e in entries[start + len(group) :])
                break
        result.published = len(entries) - len(result.unpublished) - result.dropped
        return result

    def _publish_group(self, group: list[dict[str, Any]], result: PublishResult) -> list[dict[str, Any]]:
        return self._backoff.retry(group, lambda pending: self._send(pending, result))

    def _send(self, messages: list[dict[str, Any]], result: PublishResult) -> list[dict[str, Any]]:
        """One PublishBatch; returns the messages to send again."""
        result.publish_calls += 1
        try:
            response = self._call("publish_batch", TopicArn=self._topic, PublishBatchRequestEntries=messages)
        except CallFailed:
            return messages
        by_id = {message["Id"]: message for message in messages}
        retry = []
        for failure in response.get("Failed", []):
            if failure.get("SenderFault"):  # SNS says the message itself is wrong: retrying won't help
                result.dropped += 1
                logger.error(
                    "change notification refused by SNS; the audit entry is written",
                    extra={
                        "entryId": failure["Id"],
                        "code": failure.get("Code"),
                        "reason": failure.get("Message"),
                    },
                )
            else:
                retry.append(by_id[failure["Id"]])
        return retry
