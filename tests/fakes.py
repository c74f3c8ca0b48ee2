"""In-memory stand-ins, for tests that need no AWS at all: DynamoDB's BatchWriteItem for the
repository's own tests, and the function's three ports (repository, notifier, dead letters)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.actors.cloudtrail import Call
from chalicelib.audit.dead_letters import message_body
from chalicelib.audit.entries import Entry, sort_key
from chalicelib.audit.notifications import PUBLISH_BATCH_LIMIT, PublishResult, message_for
from chalicelib.audit.plan import Poison
from chalicelib.audit.repository import (
    BATCH_WRITE_LIMIT,
    BadPageToken,
    HistoryPage,
    SaveResult,
    decode_token,
    encode_token,
    token_scope,
)


class FakeDynamoDB:
    """Stores put items per table; ``script(call_number, requests)`` may fail a call."""

    def __init__(self, script: Callable[[int, list[Any]], str | None] = lambda n, r: None) -> None:
        self.tables: dict[str, dict[str, dict[str, Any]]] = {}
        self.calls: list[int] = []
        self._script = script

    def batch_write_item(self, RequestItems: dict[str, list[Any]]) -> dict[str, Any]:
        ((table, requests),) = RequestItems.items()
        assert len(requests) <= 25, "BatchWriteItem takes at most 25 requests"
        self.calls.append(len(requests))
        fault = self._script(len(self.calls) - 1, requests)
        if fault == "missing":
            raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "no"}}, "BatchWriteItem")
        if fault == "throttle":
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "BatchWriteItem")
        refused = [r for r in requests if r["PutRequest"]["Item"]["itemKey"]["S"] == "REFUSED"]
        if refused:
            raise ClientError(
                {
                    "Error": {
                        "Code": "ValidationException",
                        "Message": "Item size has exceeded the maximum allowed size",
                    }
                },
                "BatchWriteItem",
            )
        stored = self.tables.setdefault(table, {})
        written = requests if fault != "half" else requests[: len(requests) // 2]
        for request in written:
            entry = request["PutRequest"]["Item"]
            stored[entry["id"]["S"]] = entry
        unprocessed = requests[len(written) :]
        return {"UnprocessedItems": {table: unprocessed} if unprocessed else {}}


# -- in-memory adapters of the function's three ports -----------------------------------------


class InMemoryAuditRepository:
    """The audit repository port in a dict; entries of ``unwritable_keys`` never land, entries of
    ``refused_keys`` are refused for good, as DynamoDB refuses an entry it cannot store."""

    def __init__(
        self, unwritable_keys: frozenset[str] = frozenset(), refused_keys: frozenset[str] = frozenset()
    ) -> None:
        self.entries: dict[str, Entry] = {}
        self.unwritable_keys = set(unwritable_keys)
        self.refused_keys = set(refused_keys)

    def save(self, entries: Sequence[Entry]) -> SaveResult:
        result = SaveResult(write_calls=-(-len(entries) // BATCH_WRITE_LIMIT))
        for entry in entries:
            key, id_ = entry["itemKey"]["S"], entry["id"]["S"]
            if key in self.refused_keys:
                result.refused[id_] = "DynamoDB refused the entry: Item size has exceeded the maximum allowed size"
            elif key in self.unwritable_keys:
                result.unwritten.add(id_)
            else:
                self.entries[id_] = copy.deepcopy(entry)
        return result

    def history(self, key: str, limit: int, next_token: str | None = None) -> HistoryPage:
        scope = token_scope("in-memory", key)
        after = decode_token(next_token, scope) if next_token else None
        found = sorted((e for e in self.entries.values() if e["itemKey"]["S"] == key), key=sort_key, reverse=True)
        if after is not None and after not in {sort_key(entry) for entry in found}:
            raise BadPageToken("next does not name an entry of this history")
        if after is not None:
            found = [entry for entry in found if sort_key(entry) < after]
        page = found[:limit]
        return HistoryPage(page, encode_token(scope, sort_key(page[-1])) if len(found) > limit else None, scope)


class InMemoryNotifier:
    """The notifier port: the SNS messages it would publish; entries of ``failing_keys`` never go."""

    def __init__(self, failing_keys: frozenset[str] = frozenset()) -> None:
        self.messages: list[dict[str, Any]] = []
        self.failing_keys = set(failing_keys)

    def publish(self, entries: Sequence[Entry], table: str | None = None) -> PublishResult:
        result = PublishResult(publish_calls=-(-len(entries) // PUBLISH_BATCH_LIMIT))
        for entry in entries:
            if entry["itemKey"]["S"] in self.failing_keys:
                result.unpublished.add(entry["id"]["S"])
            else:
                self.messages.append(message_for(entry, table))
                result.published += 1
        return result

    def announced_ids(self) -> set[str]:
        return {message["Id"] for message in self.messages}


class InMemoryDeadLetters:
    """The dead-letter port: the letters it would send; poison records of ``failing_event_ids`` never go."""

    enabled = True

    def __init__(self, failing_event_ids: frozenset[str] = frozenset()) -> None:
        self.letters: list[dict[str, Any]] = []
        self.failing_event_ids = set(failing_event_ids)

    def send(self, poison: Sequence[Poison]) -> list[Poison]:
        unsent = [p for p in poison if p.event_id in self.failing_event_ids]
        self.letters.extend(json.loads(message_body(p)) for p in poison if p not in unsent)
        return unsent


class InMemoryActorRepository:
    """The actor repository port in a dict: one record per (table, key, CloudTrail event)."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str, str], Call] = {}

    def record(self, calls: Sequence[Call]) -> list[Call]:
        self.records.update({(call.table, call.item_key, call.event_key): call for call in calls})
        return []

    def calls(self, table: str, key: str, first: str, last: str) -> list[Call]:
        return sorted(
            (c for (t, k, _), c in self.records.items() if (t, k) == (table, key) and first <= c.event_time <= last),
            key=lambda c: c.event_key,
        )
