"""Poison records, with the reason, to an SQS dead-letter queue (where one is configured)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.audit_repository import Backoff
from chalicelib.changes import Rejected
from chalicelib.errors import ConfigurationError, error_code
from chalicelib.observability import logger

SEND_BATCH_LIMIT = 10
MAX_MESSAGE_BYTES = 256 * 1024
_CONFIGURATION_ERRORS = {
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "AccessDenied",
    "AccessDeniedException",
}


class DeadLetters(Protocol):
    enabled: bool

    def send(self, rejected: Sequence[Rejected]) -> list[Rejected]:
        """Send poison records away; return the ones that could not be sent (retry later)."""
        ...


class NoDeadLetters:
    """No queue configured: poison records are logged only."""

    enabled = False

    def send(self, rejected: Sequence[Rejected]) -> list[Rejected]:
        return []


def message_body(rejected: Rejected) -> str:
    """The original record and why it was set aside; the record is omitted if SQS can't carry it."""
    letter: dict[str, Any] = {
        "reason": rejected.reason,
        "eventID": rejected.event_id,
        "sequenceNumber": rejected.sequence_number,
        "record": rejected.record,
    }
    body = json.dumps(letter, default=str)
    if len(body.encode()) > MAX_MESSAGE_BYTES - 1024:
        letter["record"] = None
        letter["recordOmitted"] = {"bytes": len(body.encode()), "why": "larger than an SQS message"}
        body = json.dumps(letter, default=str)
    return body


class SqsDeadLetters:
    """SendMessageBatch, 10 a call, retrying what SQS defers."""

    enabled = True

    def __init__(self, client: Any, queue_url: str, backoff: Backoff | None = None) -> None:
        self._client = client
        self._queue = queue_url
        self._backoff = backoff or Backoff()

    def send(self, rejected: Sequence[Rejected]) -> list[Rejected]:
        unsent: list[Rejected] = []
        for start in range(0, len(rejected), SEND_BATCH_LIMIT):
            unsent.extend(self._send_group(list(rejected[start : start + SEND_BATCH_LIMIT])))
        return unsent

    def _send_group(self, group: list[Rejected]) -> list[Rejected]:
        return [rejected for _, rejected in self._backoff.retry(list(enumerate(group)), self._call)]

    def _call(self, pending: list[tuple[int, Rejected]]) -> list[tuple[int, Rejected]]:
        entries = [{"Id": f"p{i}", "MessageBody": message_body(r)} for i, r in pending]
        try:
            response = self._client.send_message_batch(QueueUrl=self._queue, Entries=entries)
        except ClientError as error:
            code = error_code(error)
            if code in _CONFIGURATION_ERRORS:
                raise ConfigurationError(
                    f"dead-letter queue {self._queue!r} (DEAD_LETTER_QUEUE_URL) cannot be sent to: {code}"
                ) from error
            return pending
        except BotoCoreError:
            return pending
        by_index = dict(pending)
        retry: list[tuple[int, Rejected]] = []
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
