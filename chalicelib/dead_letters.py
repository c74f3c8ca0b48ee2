"""Poison records, with the reason, to an SQS dead-letter queue (where one is configured)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

from chalicelib.aws_calls import AwsAdapter, Backoff, CallFailed
from chalicelib.changes import Poison
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
        unsent: list[Poison] = []
        for start in range(0, len(poison), SEND_BATCH_LIMIT):
            unsent.extend(self._send_group(list(poison[start : start + SEND_BATCH_LIMIT])))
        return unsent

    def _send_group(self, group: list[Poison]) -> list[Poison]:
        return [poison for _, poison in self._backoff.retry(list(enumerate(group)), self._send)]

    def _send(self, pending: list[tuple[int, Poison]]) -> list[tuple[int, Poison]]:
        """One SendMessageBatch; returns the letters to send again."""
        entries = [{"Id": f"p{i}", "MessageBody": message_body(r)} for i, r in pending]
        try:
            response = self._call("send_message_batch", QueueUrl=self._queue, Entries=entries)
        except CallFailed:
            return pending
        by_index = dict(pending)
        retry: list[tuple[int, Poison]] = []
        for failure in response.get("Failed", []):
            index = int(failure["Id"][1:])
            if failure.get("SenderFault"):
                logger.error(
                    "dead-letter queue refused a poison record; it is logged here only",
                    extra={"eventID": by_index[index].event_id, "code": failure.get("Code")},
                )
            else:
                retry.append((index, by_index[index]))
        return retry
