"""The only code that writes or reads the Audit table."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from chalicelib.audit.entries import UNORDERED, Entry, SortKey, id_of, is_sequence_number, sort_key
from chalicelib.aws_calls import AwsAdapter, Backoff, Reply, send_in_groups

HISTORY_INDEX = "itemKey-modificationTime-index"  # the GSI infra/tables.py defines
BATCH_WRITE_LIMIT = 25  # BatchWriteItem's maximum number of put requests per call

# The time index (changes across keys, chalicelib/audit/changes.py): hash key TIME_SHARD, range key
# TIME_ORDER. DynamoDB gives an index about 1,000 write units a second per partition key value, so
# the entries are spread over TIME_SHARDS values by their id: a burst of 10,000 entries in one
# second puts about 625 on each. TIME_ORDER is the time, then the sequence number, so the index
# itself orders the many entries of one second (the stream's times are whole seconds), and a page
# reads a few items per shard, not every entry of that second. The index projects only what orders
# entries exactly (TIME_INDEX_FIELDS), so an index write costs one write unit whatever the entry's
# size; a window query then fetches the entries it names with BatchGetItem.
TIME_INDEX = "timeShard-timeOrder-index"
TIME_SHARD = "timeShard"
TIME_ORDER = "timeOrder"
TIME_SHARDS = 16
TIME_INDEX_FIELDS = ("modificationTime", "sequenceNumber", "updatedAttribute")  # beside the keys: what sort_key reads


def time_shard(entry_id: str) -> str:
    """The time index's partition value of an entry: "00" to "15", from its id, so that a
    redelivered entry lands where it was (256 byte values split evenly over 16 shards)."""
    return f"{hashlib.sha256(entry_id.encode()).digest()[0] % TIME_SHARDS:02d}"


def time_order(modification_time: str, sequence: int) -> str:
    """The time index's range key: ``<modificationTime>#<sequence number, 40 digits>``; text order
    is (time, sequence) order, and an entry with no readable sequence number sorts first in its time."""
    return f"{modification_time}#" + ("" if sequence == UNORDERED else f"{sequence:040d}")


def stored(entry: Entry) -> Entry:
    """An entry as the trail table holds it: with its place in the time index (none for one with
    no time, which no window can hold)."""
    if "S" not in entry.get("modificationTime", {}):
        return entry
    time_, sequence, _, _ = sort_key(entry)
    return {**entry, TIME_SHARD: {"S": time_shard(id_of(entry))}, TIME_ORDER: {"S": time_order(time_, sequence)}}


def unstored(item: Entry) -> Entry:
    """A trail item as an entry: the time index's attributes are the repository's, not the entry's."""
    return {name: value for name, value in item.items() if name not in (TIME_SHARD, TIME_ORDER)}


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


def token_scope(table: str, key: str) -> str:
    """What a ``next`` token is good for: one key's history in one table."""
    return hashlib.sha256(f"{table}\x00{key}".encode("utf-8", "surrogatepass")).hexdigest()[:32]


def encode_token(scope: str, position: SortKey) -> str:
    """An opaque ``next`` token: the history it belongs to and where the last page ended.

    Five fields, each base64url, joined by dots: decoding one parses no JSON and no number, so a
    forged token has nothing to overflow or nest, and a field may hold any text a stored entry holds.
    """
    time_, sequence, attribute, entry_id = position
    return ".".join(encode_field(field) for field in (scope, time_, str(sequence), entry_id, attribute))


def decode_token(token: str, scope: str) -> SortKey:
    """The position a ``next`` token names in the history ``scope``; BadPageToken for anything else."""
    fields = token.split(".")
    try:
        issued_for, time_, sequence, entry_id, attribute = (decode_field(field) for field in fields)
    except (ValueError, binascii.Error):  # not five fields, not ASCII, not base64, not UTF-8
        raise BadPageToken("next is not a token this API issued") from None
    # the time goes to DynamoDB as the index's range key: a non-empty string of at most 1,024 bytes
    usable_time = 0 < len(time_.encode("utf-8", "surrogatepass")) <= 1024
    if not (usable_time and (is_sequence_number(sequence) or sequence == str(UNORDERED))):
        raise BadPageToken("next is not a token this API issued")
    if issued_for != scope:
        raise BadPageToken("next was issued for another key's history (or another table): start without it")
    return (time_, int(sequence), attribute, entry_id)


def encode_field(text: str) -> str:
    """One field of a token: any text (lone surrogates too, as stored text may hold them), base64url."""
    return base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass")).decode().rstrip("=")


def decode_field(field: str) -> str:
    """The text of one token field; ValueError (binascii.Error) or UnicodeError where it is none."""
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
        if after is not None and not self._reader.holds(key, after):
            raise BadPageToken(
                "next does not name an entry of this history: it was altered, or is not a token this API issued"
            )
        return self._reader.page(key, limit, after, scope)

    def save(self, entries: Sequence[Entry]) -> SaveResult:
        """Write entries 25 a call, up to ``write_concurrency`` calls at once, resending
        UnprocessedItems with backoff; report what is left unwritten (``send_in_groups``' rules).

        Lambda redelivers from the first record not fully written, and ids are derived, so
        whatever landed after it is overwritten, not duplicated.
        """
        if self._concurrency > 1 and self._writers is None and len(entries) > BATCH_WRITE_LIMIT:
            self._writers = ThreadPoolExecutor(self._concurrency, thread_name_prefix="audit-write")
        sent = send_in_groups(entries, BATCH_WRITE_LIMIT, self._send, self._backoff, self._writers)
        return SaveResult(
            unwritten={id_of(entry) for entry in sent.unsent},
            refused={id_of(entry): f"DynamoDB refused the entry: {why}" for entry, why in sent.refused},
            write_calls=sent.calls,
            retried_items=sent.retried,
        )

    def _send(self, entries: list[Entry]) -> Reply[Entry]:
        """One BatchWriteItem; the entries DynamoDB left unprocessed are to be sent again."""
        requests = [{"PutRequest": {"Item": stored(entry)}} for entry in entries]
        response = self._call("batch_write_item", RequestItems={self._table: requests})
        unprocessed = response.get("UnprocessedItems", {}).get(self._table, [])
        return Reply(deferred=[unstored(request["PutRequest"]["Item"]) for request in unprocessed])


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

    def holds(self, key: str, position: SortKey) -> bool:
        """Whether an entry of ``key`` stands exactly at ``position``: a token names a real entry,
        so one altered by hand (another time, number or id) is refused, not paged from."""
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": self._index,
            "KeyConditionExpression": "itemKey = :key AND modificationTime = :time",
            "ExpressionAttributeValues": {":key": {"S": key}, ":time": {"S": position[0]}},
        }
        while True:
            response = self._call("query", **query)
            if any(sort_key(entry) == position for entry in response["Items"]):
                return True
            if "LastEvaluatedKey" not in response:
                return False
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

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
            found.extend(unstored(e) for e in response["Items"] if after is None or sort_key(e) < after)
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
