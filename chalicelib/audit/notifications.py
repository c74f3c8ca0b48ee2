"""Change notifications: every written entry published to SNS, filterable by key and kind."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from chalicelib.attribute_values import item_json
from chalicelib.audit.entries import Entry, change_kind, id_of, item_key_of
from chalicelib.aws_calls import AwsAdapter, Backoff, Reply, failed_entries, send_in_groups
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

    def add(self, other: PublishResult) -> None:
        """Count in the result of another part of the same batch."""
        self.unpublished |= other.unpublished
        self.publish_calls += other.publish_calls
        self.dropped += other.dropped
        self.published += other.published


class Notifier(Protocol):
    def publish(self, entries: Sequence[Entry], table: str | None = None) -> PublishResult:
        """Publish every entry (of the audited ``table``); report the ones not published yet."""
        ...


class NoNotifier:
    """No topic configured: nothing is published and nothing fails."""

    def publish(self, entries: Sequence[Entry], table: str | None = None) -> PublishResult:
        return PublishResult()


def message_for(entry: Entry, table: str | None = None) -> dict[str, Any]:
    """The PublishBatch request entry of one audit entry.

    The body is the entry as JSON. An entry too large for SNS (entries reach 400 KB, messages
    256 KB) is sent without its values and with ``"valuesOmitted": true``: subscribers still
    learn of the change and read the values from ``GET /audit/{key}``.
    """
    attributes = {
        "itemKey": {"DataType": "String", "StringValue": item_key_of(entry)},
        "changeKind": {"DataType": "String", "StringValue": change_kind(entry).value},
    }
    if table is not None:  # subscribers of several audited tables filter by it too
        attributes["tableName"] = {"DataType": "String", "StringValue": table}
    body = item_json(entry)
    if len(body.encode()) + 200 > MAX_MESSAGE_BYTES:
        slim = {name: value for name, value in entry.items() if name not in ("oldValue", "newValue")}
        body = item_json({**slim, "valuesOmitted": {"BOOL": True}})
    return {"Id": id_of(entry), "Message": body, "MessageAttributes": attributes}


class SnsNotifier(AwsAdapter):
    """Publishes entries to one topic with PublishBatch, 10 a call, retrying what SNS defers."""

    def __init__(self, client: Any, topic_arn: str, backoff: Backoff | None = None) -> None:
        super().__init__(client, f"SNS topic {topic_arn!r} (CHANGE_TOPIC_ARN)", backoff)
        self._topic = topic_arn

    def publish(self, entries: Sequence[Entry], table: str | None = None) -> PublishResult:
        sent = send_in_groups(
            [message_for(entry, table) for entry in entries], PUBLISH_BATCH_LIMIT, self._send, self._backoff
        )
        for message, why in sent.refused:  # SNS says the message itself is wrong: retrying won't help
            logger.error("change notification refused by SNS; the audit entry is written",
                         extra={"entryId": message["Id"], "reason": why})  # fmt: skip
        unpublished = {message["Id"] for message in sent.unsent}
        return PublishResult(
            unpublished=unpublished,
            publish_calls=sent.calls,
            dropped=len(sent.refused),
            published=len(entries) - len(unpublished) - len(sent.refused),
        )

    def _send(self, messages: list[dict[str, Any]]) -> Reply[dict[str, Any]]:
        """One PublishBatch; what SNS failed is sent again, unless it was the sender's fault."""
        response = self._call("publish_batch", TopicArn=self._topic, PublishBatchRequestEntries=messages)
        return failed_entries(messages, response.get("Failed", []))
