"""Poison records, with the reason, to an SQS dead-letter queue (where one is configured)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

from chalicelib.audit.plan import Poison
from chalicelib.aws_calls import AwsAdapter, Backoff, Reply, failed_entries, send_in_groups
from chalicelib.observability import logger

SEND_BATCH_LIMIT = 10
MAX_MESSAGE_BYTES = 256 * 1024


class DeadLetters(Protocol):
    enabled: bool

    def send(self, poison: Sequence[Poison]) -> list[Poison]:
        """Send poison records away; return the ones that could not be sent (retry later)."""
        ...


class NoDeadLetters:
    """No queue configured: poison records are logged only."""

    enabled = False

    def send(self, poison: Sequence[Poison]) -> list[Poison]:
        return []


def message_body(poison: Poison) -> str:
    """The original record and why it was set aside; the record is omitted if SQS can't carry it."""
    letter: dict[str, Any] = {
        "reason": poison.reason,
        "eventID": poison.event_id,
        "sequenceNumber": poison.sequence_number,
        "record": poison.record,
    }
    if poison.table is not None:
        letter["tableName"] = poison.table
    body = json.dumps(letter, default=str)
    if len(body.encode()) > MAX_MESSAGE_BYTES - 1024:
        letter["record"] = None
        letter["recordOmitted"] = {"bytes": len(body.encode()), "why": "larger than an SQS message"}
        body = json.dumps(letter, default=str)
    return body


class SqsDeadLetters(AwsAdapter):
    """SendMessageBatch, 10 a call, retrying what SQS defers."""

    enabled = True

    def __init__(self, client: Any, queue_url: str, backoff: Backoff | None = None) -> None:
        super().__init__(client, f"dead-letter queue {queue_url!r} (DEAD_LETTER_QUEUE_URL)", backoff)
        self._queue = queue_url

    def send(self, poison: Sequence[Poison]) -> list[Poison]:
        letters = [{"Id": f"p{number}", "MessageBody": message_body(p)} for number, p in enumerate(poison)]
        sent = send_in_groups(letters, SEND_BATCH_LIMIT, self._send, self._backoff)
        for letter, why in sent.refused:  # retrying cannot help: the ERROR line is all there is of it
            logger.error("dead-letter queue refused a poison record; it is logged here only",
                         extra={"eventID": poison[int(letter["Id"][1:])].event_id, "reason": why})  # fmt: skip
        return [poison[int(letter["Id"][1:])] for letter in sent.unsent]

    def _send(self, letters: list[dict[str, Any]]) -> Reply[dict[str, Any]]:
        """One SendMessageBatch; what SQS failed is sent again, unless it was the sender's fault."""
        response = self._call("send_message_batch", QueueUrl=self._queue, Entries=letters)
        return failed_entries(letters, response.get("Failed", []))
