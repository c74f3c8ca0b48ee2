"""Changes across keys: the entries of a time window, of every audited table, newest first, with
who made each. Read through each trail's time index (chalicelib/audit/repository.py), never a Scan.

The index spreads entries over ``TIME_SHARDS`` partition values, so a window is one Query per
(trail, shard), merged. Each shard is read lazily, ``SHARD_QUERY_LIMIT`` index items a call, in
the index's order (time, sequence number), the entries of one record put in exact order (then
attribute, id) before they are merged; so pages follow one total order with no gap and no
repeat, whichever shard an entry is in.
The index holds only what orders the entries: the entries themselves are then fetched with
BatchGetItem, 100 a call, and filtered by kind and actor (a filtered page may be short).
"""

from __future__ import annotations

import hashlib
import heapq
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import groupby, islice
from typing import Any

from chalicelib.actors.attribution import cloudtrail_key, with_actors
from chalicelib.actors.repository import ActorRepository
from chalicelib.audit.entries import (
    UNORDERED,
    ChangeKind,
    Entry,
    SortKey,
    change_kind,
    id_of,
    is_sequence_number,
    sort_key,
)
from chalicelib.audit.repository import (
    TIME_INDEX,
    TIME_ORDER,
    TIME_SHARDS,
    BadPageToken,
    decode_field,
    encode_field,
    time_order,
    unstored,
)
from chalicelib.aws_calls import AwsAdapter, Backoff, RetryLater
from chalicelib.settings import Settings

KINDS = tuple(kind.value for kind in ChangeKind)  # created, updated, deleted, expired
SHARD_QUERY_LIMIT = 16  # an index item is about 220 bytes (make bench): 16 fit one 4 KB read unit
FETCH_LIMIT = 100  # BatchGetItem's maximum number of keys per call
EXAMINE_LIMIT = 1000  # index items one page looks at, at most: a filter that matches little ends a page short


@dataclass(frozen=True)
class ChangesQuery:
    """Which changes: ``modificationTime`` in [start, end), of some tables, kinds and actor."""

    start: str  # inclusive, the entries' form YYYY-MM-DDTHH:MM:SS.mmmZ
    end: str  # exclusive, the same form
    tables: tuple[str, ...] = ()  # audited SOURCE tables; () = every audited table
    kinds: frozenset[str] = frozenset()  # of KINDS; empty = every kind
    actor: str | None = None  # a substring of the actor's ARN, or of a candidate's

    def wants(self, entry: Entry) -> bool:
        """Whether an entry (actors joined) passes the kind and actor filters."""
        if self.kinds and change_kind(entry).value not in self.kinds:
            return False
        return self.actor is None or any(self.actor in arn for arn in actor_arns(entry))

    def scope(self) -> str:
        """What a ``next`` token is good for: this query, its window and filters."""
        parts = ["changes", self.start, self.end, ",".join(self.tables), ",".join(sorted(self.kinds))]
        parts.append("" if self.actor is None else "=" + self.actor)  # no actor differs from an empty one
        text = "\x00".join(parts)
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass(frozen=True)
class ChangesPage:
    entries: list[Entry]
    next: str | None


def actor_arns(entry: Entry) -> list[str]:
    """The ARNs an entry with actors joined names: its actor's, or its candidates'."""
    actor = entry.get("actor", {}).get("M")
    if actor is not None:
        return [str(actor["arn"]["S"])]
    return [str(candidate["M"]["arn"]["S"]) for candidate in entry.get("actorCandidates", {}).get("L", [])]


@dataclass(order=True, frozen=True)
class _Found:
    """One index item: where it stands in the order, and the trail it is in."""

    position: SortKey
    source: str = field(compare=False)


class ChangesReader:
    """The changes of a stage's audited tables, read through their trails' time index."""

    def __init__(self, client: Any, settings: Settings, actors: ActorRepository | None) -> None:
        self._trails = {table.source: _TimeIndex(client, table.trail) for table in settings.audited_tables}
        self._settings = settings
        self._actors = actors

    def entries(self, query: ChangesQuery, oldest_first: bool = False) -> Iterator[Entry]:
        """Every entry of the query, actors joined and ``tableName`` added, read lazily: memory
        holds a few index pages per shard and one fetch of entries, whatever the window's size."""
        found = self._index(query, None, oldest_first)
        while chunk := list(islice(found, FETCH_LIMIT)):
            yield from (entry for _, entry in self._fetched(chunk, query) if entry is not None)

    def page(self, query: ChangesQuery, limit: int, next_token: str | None = None) -> ChangesPage:
        """Up to ``limit`` entries, newest first, and a token for the rest (None only at the end).

        A page looks at no more than EXAMINE_LIMIT index items: under a filter it may hold fewer
        than ``limit`` entries, or none, and still have a ``next``.
        """
        after = decode_position(next_token, query) if next_token else None
        found = self._index(query, after, oldest_first=False)
        entries: list[Entry] = []
        examined = 0
        last: SortKey | None = None
        while len(entries) < limit and examined < EXAMINE_LIMIT:
            chunk = list(islice(found, min(FETCH_LIMIT, limit - len(entries), EXAMINE_LIMIT - examined)))
            if not chunk:
                return ChangesPage(entries, None)
            for position, entry in self._fetched(chunk, query):
                examined += 1
                last = position
                if entry is not None:
                    entries.append(entry)
        if next(found, None) is None:  # nothing after the last entry looked at: this is the end
            return ChangesPage(entries, None)
        assert last is not None
        return ChangesPage(entries, encode_position(last, query))

    def _index(self, query: ChangesQuery, after: SortKey | None, oldest_first: bool) -> Iterator[_Found]:
        """The index items of the window, of every (trail, shard), merged in order."""
        sources = query.tables or tuple(self._trails)
        for source in sources:
            self._settings.table(source)  # UnknownTable, listing the audited tables
        shards = [
            self._shard(source, shard, query, after, oldest_first) for source in sources for shard in range(TIME_SHARDS)
        ]
        return heapq.merge(*shards, reverse=not oldest_first)

    def _shard(
        self, source: str, shard: int, query: ChangesQuery, after: SortKey | None, oldest_first: bool
    ) -> Iterator[_Found]:
        for item in self._trails[source].window(shard, query, after, oldest_first):
            yield _Found(sort_key(item), source)

    def _fetched(self, chunk: list[_Found], query: ChangesQuery) -> list[tuple[SortKey, Entry | None]]:
        """Each index item's entry, actors joined, or None where a filter leaves it out (or the
        entry is gone: the index is eventually consistent)."""
        by_id: dict[str, Entry] = {}
        for source, group in groupby(sorted(chunk, key=lambda f: f.source), key=lambda f: f.source):
            fetched = self._trails[source].fetch([found.position[3] for found in group])
            joined = self._joined(fetched, source)
            by_id.update((id_of(entry), {**entry, "tableName": {"S": source}}) for entry in joined)
        shown = []
        for found in chunk:
            entry = by_id.get(found.position[3])
            shown.append((found.position, entry if entry is not None and query.wants(entry) else None))
        return shown

    def _joined(self, entries: Iterable[Entry], source: str) -> list[Entry]:
        """Entries with their actors: one AuditActors Query per key among them, spanning only its
        entries' times (+-2 s), as the history does; so a page's reads and memory stay bounded by
        the page, whatever the window and however busy a key was in it."""
        joined: list[Entry] = []
        for _, group in groupby(sorted(entries, key=cloudtrail_key), key=cloudtrail_key):
            joined += with_actors(list(group), self._actors, source)
        return joined


class _TimeIndex(AwsAdapter):
    """One trail table's time index: its shards' windows, and the entries they name."""

    def __init__(self, client: Any, table: str, backoff: Backoff | None = None) -> None:
        super().__init__(client, f"Audit table {table!r} or its index {TIME_INDEX!r}", backoff)
        self._table = table

    def window(self, shard: int, query: ChangesQuery, after: SortKey | None, oldest_first: bool) -> Iterator[Entry]:
        """The shard's index items in [start, end) (and before ``after``), in exact order.

        A bare time bounds the range keys (``<time>#<sequence>``) of that time from below: every
        entry of ``start`` is at or above it, so in; every entry of ``end`` above it, so out.
        """
        last = query.end if after is None else min(query.end, time_order(after[0], after[1]))
        if query.start > last:  # the window, or what is left of it, is empty: DynamoDB refuses BETWEEN then
            return
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": TIME_INDEX,
            "KeyConditionExpression": "timeShard = :shard AND timeOrder BETWEEN :start AND :last",
            "ExpressionAttributeValues": {
                ":shard": {"S": f"{shard:02d}"},
                ":start": {"S": query.start},
                ":last": {"S": last},
            },
            "ScanIndexForward": oldest_first,
            "Limit": SHARD_QUERY_LIMIT,
        }
        for item in _in_order(self._pages(request), reverse=not oldest_first):
            if after is None or sort_key(item) < after:  # the entries of ``after``'s record before it
                yield item

    def _pages(self, request: dict[str, Any]) -> Iterator[list[Entry]]:
        while True:
            response = self._call("query", **request)
            yield response["Items"]
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def fetch(self, ids: list[str]) -> list[Entry]:
        """The entries of these ids (at most FETCH_LIMIT), unprocessed keys asked again with backoff."""
        found: list[Entry] = []

        def ask(pending: list[str]) -> list[str]:
            keys = [{"id": {"S": entry_id}} for entry_id in pending]
            response = self._call("batch_get_item", RequestItems={self._table: {"Keys": keys}})
            found.extend(unstored(item) for item in response["Responses"].get(self._table, []))
            unprocessed = response.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
            return [key["id"]["S"] for key in unprocessed]

        if ids and self._backoff.retry(ids, ask):
            raise RetryLater(f"{self._resource} left keys unprocessed after every retry")
        return found


def _in_order(pages: Iterable[list[Entry]], reverse: bool) -> Iterator[Entry]:
    """Index items in exact order: the index orders by time and sequence number, so only the
    entries of one record (one per changed attribute) tie; they are held until the next range key
    shows (or the pages end), then sorted by ``sort_key``."""
    pending: list[Entry] = []
    for items in pages:
        if not items:
            continue
        pending += items
        boundary = items[-1][TIME_ORDER]["S"]  # every range key before it, in the reading direction, is whole
        ready = [item for item in pending if item[TIME_ORDER]["S"] != boundary]
        pending = [item for item in pending if item[TIME_ORDER]["S"] == boundary]
        yield from sorted(ready, key=sort_key, reverse=reverse)
    yield from sorted(pending, key=sort_key, reverse=reverse)


# -- next tokens ------------------------------------------------------------------------------


def encode_position(position: SortKey, query: ChangesQuery) -> str:
    """A ``next`` token: the query it belongs to, its window, and the last index item a page
    looked at. Seven base64url fields joined by dots, like the history's: nothing in it is parsed
    as JSON, or as a number of unbounded size.

    The window travels in the token, so that the pages of a request that gave no ``from``/``to``
    (the last hour, to now) keep the window of its first page.
    """
    time_, sequence, attribute, entry_id = position
    fields = (query.scope(), query.start, query.end, time_, str(sequence), entry_id, attribute)
    return ".".join(encode_field(part) for part in fields)


def _fields(token: str) -> list[str]:
    try:
        fields = [decode_field(part) for part in token.split(".")]
    except (ValueError, UnicodeError):  # not ASCII, not base64, not UTF-8 (binascii.Error is a ValueError)
        raise BadPageToken("next is not a token this API issued") from None
    if len(fields) != 7:
        raise BadPageToken("next is not a token this API issued")
    return fields


ENTRY_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def token_window(token: str) -> tuple[str, str]:
    """The window (start, end) a token carries; ``decode_position`` checks that it is the query's."""
    _, start, end, *_ = _fields(token)
    if not (ENTRY_TIME.fullmatch(start) and ENTRY_TIME.fullmatch(end)):
        raise BadPageToken("next is not a token this API issued")
    return start, end


def decode_position(token: str, query: ChangesQuery) -> SortKey:
    """The position a token names for this query; BadPageToken for anything else."""
    issued_for, _, _, time_, sequence, entry_id, attribute = _fields(token)
    if issued_for != query.scope():
        raise BadPageToken(
            "next was issued for another query (another from, to, table, kind or actor): "
            "give the same ones, or start without it"
        )
    if not (query.start <= time_ < query.end and (is_sequence_number(sequence) or sequence == str(UNORDERED))):
        raise BadPageToken("next is not a token this API issued")
    return (time_, int(sequence), attribute, entry_id)
