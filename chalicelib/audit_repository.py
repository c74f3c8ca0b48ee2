"""The only code that writes or reads the Audit table."""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from chalicelib.aws_calls import AwsAdapter, Backoff, Refused, RetryLater
from chalicelib.changes import Entry

HISTORY_INDEX = "itemKey-modificationTime-index"  # the GSI infra/tables.py defines
BATCH_WRITE_LIMIT = 25  # BatchWriteItem's maximum number of put requests per call


@dataclass
class SaveResult:
    """What became of a save: entry ids not written (a later try may) and ids refused for good."""

    unwritten: set[str] = field(default_factory=set)
    refused: dict[str, str] = field(default_factory=dict)  # entry id -> why DynamoDB refused it
    write_calls: int = 0
    retried_items: int = 0

    def add(self, other: SaveResult) -> None:
        """Count in the result of another part of the same save."""
        self.unwritten |= other.unwritten
        self.refused.update(other.refused)
        self.write_calls += other.write_calls
        self.retried_items += other.retried_items


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """One page of a key's history, newest first, and the token of the next page (or None)."""

    entries: list[Entry]
    next: str | None


class BadPageToken(ValueError):
    """A ``next`` token this repository did not issue."""


class AuditRepository(Protocol):
    """The narrow port: the producer writes through it, the history route reads through it."""

    def save(self, entries: Sequence[Entry]) -> SaveResult:
        """Write every entry (idempotently, by id); report what could not be written."""
        ...

    def history(self, key: str, limit: int, next_token: str | None = None) -> HistoryPage:
        """A key's entries, newest first (time, then sequence number), a page at a time."""
        ...


SortKey = tuple[str, int, str, str]


def sort_key(entry: Entry) -> SortKey:
    """Chronological order of entries: time, then sequence number (as an integer), then attribute."""
    return (
        entry["modificationTime"]["S"],
        int(entry["sequenceNumber"]["S"]),
        entry.get("updatedAttribute", {}).get("S", ""),
        entry["id"]["S"],
    )


def encode_token(key: SortKey) -> str:
    """An opaque ``next`` token: where the last page ended."""
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def decode_token(token: str) -> SortKey:
    """The position a ``next`` token names; BadPageToken for anything else."""
    try:
        time_, sequence, attribute, entry_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        if not all(isinstance(part, str) for part in (time_, attribute, entry_id)):
            raise TypeError("position parts are not strings")
        return (time_, int(sequence), attribute, entry_id)
    except (ValueError, TypeError, binascii.Error) as error:
        raise BadPageToken("next is not a token this API issued") from error


class DynamoDBAuditRepository(AwsAdapter):
    """Audit entries in a DynamoDB table, written with BatchWriteItem (25 a call, several at once).

    boto3's low-level clients are thread-safe, so one client serves every writer thread; the
    threads are started on the first save that has two groups or more, and kept for the next.
    """

    def __init__(
        self,
        client: Any,
        table_name: str,
        backoff: Backoff | None = None,
        history_index: str = HISTORY_INDEX,
        write_concurrency: int = 1,
    ) -> None:
        if write_concurrency < 1:
            raise ValueError(f"write_concurrency must be at least 1, not {write_concurrency}")
        super().__init__(client, f"Audit table {table_name!r} (AUDIT_TABLE_NAME)", backoff)
        self._table = table_name
        self._reader = _HistoryReader(client, table_name, history_index)
        self._concurrency = write_concurrency
        self._writers: ThreadPoolExecutor | None = None

    def history(self, key: str, limit: int, next_token: str | None = None) -> HistoryPage:
        """A key's entries, newest first; raises BadPageToken for a token it did not issue."""
        after = decode_token(next_token) if next_token else None
        return self._reader.page(key, limit, after)

    def save(self, entries: Sequence[Entry]) -> SaveResult:
        """Write entries 25 a call, up to ``write_concurrency`` calls at once, resending
        UnprocessedItems with backoff; report what is left unwritten.

        Groups start in entry order. Once a group cannot be written after all its attempts, no
        further group starts: those and the failed group's leftovers are reported unwritten,
        while groups already in flight finish. Lambda redelivers from the first record not fully
        written, and ids are derived, so whatever landed after it is overwritten, not duplicated.
        """
        groups = [entries[start : start + BATCH_WRITE_LIMIT] for start in range(0, len(entries), BATCH_WRITE_LIMIT)]
        failed = threading.Event()

        def write(group: Sequence[Entry]) -> SaveResult:
            part = SaveResult()
            if failed.is_set():  # an earlier group could not be written: this one is not tried
                part.unwritten.update(_id(entry) for entry in group)
                return part
            try:
                left = self._write_group(group, part)
            except BaseException:
                failed.set()
                raise
            if left:
                failed.set()
                part.unwritten.update(_id(entry) for entry in left)
            return part

        result = SaveResult()
        if self._concurrency == 1 or len(groups) < 2:  # one after the other, in this thread
            for group in groups:
                result.add(write(group))
            return result
        if self._writers is None:
            self._writers = ThreadPoolExecutor(self._concurrency, thread_name_prefix="audit-write")
        error = None
        for future in [self._writers.submit(write, group) for group in groups]:
            try:
                result.add(future.result())
            except Exception as raised:  # every writer is waited for before the first error is raised
                error = error or raised
        if error is not None:
            raise error
        return result

    def _write_group(self, group: Sequence[Entry], result: SaveResult) -> list[Entry]:
        """Write up to 25 entries; return those still unwritten after every attempt."""

        def send(pending: list[Entry]) -> list[Entry]:
            left = self._send(pending, result)
            result.retried_items += len(left)
            return left

        return self._backoff.retry(list(group), send)

    def _send(self, entries: list[Entry], result: SaveResult) -> list[Entry]:
        """One BatchWriteItem; returns the entries to send again."""
        result.write_calls += 1
        try:
            requests = [{"PutRequest": {"Item": entry}} for entry in entries]
            response = self._call("batch_write_item", RequestItems={self._table: requests})
        except Refused as refused:
            return self._isolate(entries, result, str(refused))
        except RetryLater:
            return entries
        unprocessed = response.get("UnprocessedItems", {}).get(self._table, [])
        return [request["PutRequest"]["Item"] for request in unprocessed]

    def _isolate(self, entries: list[Entry], result: SaveResult, reason: str) -> list[Entry]:
        """DynamoDB refused a call for its content: find the entries it refuses on their own."""
        if len(entries) == 1:
            result.refused[_id(entries[0])] = f"DynamoDB refused the entry: {reason}"
            return []
        retry: list[Entry] = []
        for entry in entries:
            retry.extend(self._send([entry], result))
        return retry


class _HistoryReader(AwsAdapter):
    """Pages through the history index; ties in time are read whole, then ordered exactly.

    The index sorts by ``modificationTime`` alone, so entries of the same millisecond come back
    in no set order. A page therefore reads past its last entry until the time changes, sorts
    by (time, sequence number, attribute), and resumes after the last entry it returned.
    """

    def __init__(self, client: Any, table: str, index: str) -> None:
        super().__init__(client, f"Audit table {table!r} (AUDIT_TABLE_NAME) or its index {index!r}")
        self._table = table
        self._index = index

    def page(self, key: str, limit: int, after: SortKey | None) -> HistoryPage:
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": self._index,
            "KeyConditionExpression": "itemKey = :key",
            "ExpressionAttributeValues": {":key": {"S": key}},
            "ScanIndexForward": False,
            "Limit": min(limit + 1, 1000),
        }
        if after is not None:
            query["KeyConditionExpression"] += " AND modificationTime <= :time"
            query["ExpressionAttributeValues"][":time"] = {"S": after[0]}
        found: list[Entry] = []
        exhausted = False
        while True:
            response = self._call("query", **query)
            found.extend(e for e in response["Items"] if after is None or sort_key(e) < after)
            start = response.get("LastEvaluatedKey")
            if not start:
                exhausted = True
                break
            query["ExclusiveStartKey"] = start
            # enough, and past the time of the last entry this page returns: its ties are all in
            if len(found) > limit and found[-1]["modificationTime"] != found[limit - 1]["modificationTime"]:
                break
        found.sort(key=sort_key, reverse=True)
        page, more = found[:limit], len(found) > limit or not exhausted
        return HistoryPage(page, encode_token(sort_key(page[-1])) if page and more else None)


def _id(entry: Entry) -> str:
    return str(entry["id"]["S"])
