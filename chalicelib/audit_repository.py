"""The only code that writes or reads the Audit table."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from chalicelib.changes import Entry
from chalicelib.errors import ConfigurationError

BATCH_WRITE_LIMIT = 25  # BatchWriteItem's maximum number of put requests per call

# Errors that name the deployment, not the data: no retry can succeed, so they surface at once.
_CONFIGURATION_ERRORS = {
    "ResourceNotFoundException": "does not exist (or is not ACTIVE) in this account and region",
    "AccessDeniedException": "is not writable by the function's role",
    "UnrecognizedClientException": "cannot be reached with these credentials",
}


@dataclass(slots=True)
class SaveResult:
    """What became of a save: ids not written (transient, retry later) and ids refused for good."""

    unwritten: set[str] = field(default_factory=set)
    rejected: dict[str, str] = field(default_factory=dict)
    write_calls: int = 0
    retried_items: int = 0


class AuditRepository(Protocol):
    """The narrow port the producer writes through."""

    def save(self, entries: Sequence[Entry]) -> SaveResult:
        """Write every entry (idempotently, by id); report what could not be written."""
        ...


@dataclass
class Backoff:
    """Exponential backoff with full jitter, bounded in attempts and in delay."""

    max_attempts: int = 8
    base_seconds: float = 0.05
    cap_seconds: float = 2.0
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random

    def wait(self, attempt: int) -> None:
        """Sleep before retry number ``attempt`` (1-based)."""
        self.sleep(self.jitter() * min(self.cap_seconds, self.base_seconds * 2**attempt))


class DynamoDBAuditRepository:
    """Audit entries in a DynamoDB table, written with BatchWriteItem (25 a call)."""

    def __init__(self, client: Any, table_name: str, backoff: Backoff | None = None) -> None:
        self._client = client
        self._table = table_name
        self._backoff = backoff or Backoff()

    def save(self, entries: Sequence[Entry]) -> SaveResult:
        """Write entries in order, 25 a call, resending UnprocessedItems with backoff.

        Stops at the first group that cannot be written after all attempts: everything from
        there on is reported unwritten, since Lambda redelivers from the first failed record.
        """
        result = SaveResult()
        for start in range(0, len(entries), BATCH_WRITE_LIMIT):
            group = entries[start : start + BATCH_WRITE_LIMIT]
            left = self._write_group(group, result)
            if left:
                result.unwritten.update(_id(entry) for entry in left)
                result.unwritten.update(_id(entry) for entry in entries[start + len(group) :])
                break
        return result

    def _write_group(self, group: Sequence[Entry], result: SaveResult) -> list[Entry]:
        """Write up to 25 entries; return those still unwritten after every attempt."""
        pending = list(group)
        for attempt in range(1, self._backoff.max_attempts + 1):
            pending = self._call(pending, result)
            if not pending:
                return []
            result.retried_items += len(pending)
            if attempt < self._backoff.max_attempts:
                self._backoff.wait(attempt)
        return pending

    def _call(self, entries: list[Entry], result: SaveResult) -> list[Entry]:
        """One BatchWriteItem; returns the entries to try again."""
        requests = [{"PutRequest": {"Item": entry}} for entry in entries]
        result.write_calls += 1
        try:
            response = self._client.batch_write_item(RequestItems={self._table: requests})
        except ParamValidationError as error:
            return self._isolate(entries, result, str(error))
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in _CONFIGURATION_ERRORS:
                raise ConfigurationError(
                    f"Audit table {self._table!r} (AUDIT_TABLE_NAME) {_CONFIGURATION_ERRORS[code]}: {code}"
                ) from error
            if code == "ValidationException":
                return self._isolate(entries, result, error.response["Error"].get("Message", ""))
            return entries  # throttled or 5xx after botocore's own retries: try again later
        except BotoCoreError:
            return entries  # connection or read timeout: the write may or may not have landed
        unprocessed = response.get("UnprocessedItems", {}).get(self._table, [])
        return [request["PutRequest"]["Item"] for request in unprocessed]

    def _isolate(self, entries: list[Entry], result: SaveResult, reason: str) -> list[Entry]:
        """DynamoDB refused the call for its content: find the entries it refuses on their own."""
        if len(entries) == 1:
            result.rejected[_id(entries[0])] = f"DynamoDB refused the entry: {reason}"
            return []
        retry: list[Entry] = []
        for entry in entries:
            retry.extend(self._call([entry], result))
        return retry


def _id(entry: Entry) -> str:
    return str(entry["id"]["S"])
