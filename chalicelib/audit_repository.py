"""The only code that writes or reads the Audit table."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
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
    """One page of a key's history, newest first, and the token of the next page (or None).

    ``scope`` binds the page's tokens to the table and key that issued them.
    """

    entries: list[Entry]
    next: str | None
    scope: str = ""

    def cut(self, count: int) -> HistoryPage:
        """The first ``count`` entries (at least one), with a token that resumes right after them."""
        if count >= len(self.entries):
            return self
        kept = self.entries[: max(count, 1)]
        return HistoryPage(kept, encode_token(self.scope, sort_key(kept[-1])), self.scope)


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
_SEQUENCE = re.compile(r"\d{1,40}", re.ASCII)  # DynamoDB Streams' sequence numbers are up to 40 digits
UNORDERED = -1  # the sequence number of an entry that has no readable one


def sort_key(entry: Entry) -> SortKey:
    """Chronological order of entries: time, then sequence number (as an integer), then attribute.

    Read leniently: an entry written around the producer (no decimal sequence number) sorts
    first within its time instead of failing the whole history.
    """
    sequence = entry.get("sequenceNumber", {}).get("S", "")
    return (
        entry["modificationTime"]["S"],
        int(sequence) if _SEQUENCE.fullmatch(sequence) else UNORDERED,
        entry.get("updatedAttribute", {}).get("S", ""),
        entry["id"]["S"],
    )


def token_scope(table: str, key: str) -> str:
    """What a ``next`` token is good for: one key's history in one table."""
    return hashlib.sha256(f"{table}\x00{key}".encode("utf-8", "surrogatepass")).hexdigest()[:32]


def encode_token(scope: str, position: SortKey) -> str:
    """An opaque ``next`` token: the history it belongs to and where the last page ended.

    Five fields, each base64url, joined by dots: decoding one parses no JSON and no number, so a
    forged token has nothing to overflow or nest, and a field may hold any text a stored entry holds.
    """
    time_, sequence, attribute, entry_id = position
    return ".".join(_b64(field) for field in (scope, time_, str(sequence), entry_id, attribute))


def decode_token(token: str, scope: str) -> SortKey:
    """The position a ``next`` token names in the history ``scope``; BadPageToken for anything else."""
    fields = token.split(".")
    try:
        issued_for, time_, sequence, entry_id, attribute = (_unb64(field) for field in fields)
    except (ValueError, binascii.Error):  # not five fields, not ASCII, not base64, not UTF-8
        raise BadPageToken("next is not a token this API issued") from None
    # the time goes to DynamoDB as the index's range key: a non-empty string of at most 1,024 bytes
    usable_time = 0 < len(time_.encode("utf-8", "surrogatepass")) <= 1024
    if not (usable_time and (_SEQUENCE.fullmatch(sequence) or sequence == str(UNORDERED))):
        raise BadPageToken("next is not a token this API issued")
    if issued_for != scope:
        raise BadPageToken("next was issued for another key's history (or another table): start without it")
    return (time_, int(sequence), attribute, entry_id)


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass")).decode().rstrip("=")


def _unb64(field: str) -> str:
    return base64.urlsafe_b64decode(field.encode("ascii") + b"=" * (-len(field) % 4)).decode("utf-8", "surrogatepass")


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
        scope = token_scope(self._table, key)
        after = decode_token(next_token, scope) if next_token else None
        return self._reader.page(key, limit, after, scope)

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

    def page(self, key: str, limit: int, after: SortKey | None, scope: str) -> HistoryPage:
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
        return HistoryPage(page, encode_token(scope, sort_key(page[-1])) if page and more else None, scope)


def _id(entry: Entry) -> str:
    return str(entry["id"]["S"])
