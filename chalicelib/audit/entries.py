"""Pure: a checked stream record -> its audit entries, in the shapes SPEC.md gives; and the one
place that reads an entry's fields.

An entry is a DynamoDB item in attribute-value form, ready for ``BatchWriteItem``: its values are
the record's own, so every type round-trips exactly.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from enum import Enum
from typing import Any

from chalicelib.attribute_values import AttributeValue
from chalicelib.audit.records import SEQUENCE_NUMBER, AttributeChange, EventName, StreamRecord

Entry = dict[str, AttributeValue]


class ChangeKind(Enum):
    """What one entry says happened; notifications carry it so subscribers can filter."""

    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    EXPIRED = "expired"  # deleted by DynamoDB's TTL process


def build_entries(record: StreamRecord) -> list[Entry]:
    """A checked record -> its audit entries, in the shapes SPEC.md gives."""
    if record.event_name is EventName.INSERT:
        return [{**_common(record, entry_id(record.event_id)), "newValue": {"M": record.item}}]
    if record.event_name is EventName.REMOVE:
        removed = {**_common(record, entry_id(record.event_id)), "oldValue": {"M": record.item}}
        if record.expired:
            removed["expired"] = {"BOOL": True}
        return [removed]
    return [_updated(record, change) for change in record.changes]


def _updated(record: StreamRecord, change: AttributeChange) -> Entry:
    entry: Entry = {**_common(record, entry_id(record.event_id, change.name)), "updatedAttribute": {"S": change.name}}
    if change.old is not None:  # absent, not NULL: NULL is a value an attribute can hold
        entry["oldValue"] = change.old
    if change.new is not None:
        entry["newValue"] = change.new
    return entry


def _common(record: StreamRecord, id_: str) -> Entry:
    """The fields every entry has, and the writer's declared stamp where there is one."""
    entry: Entry = {
        "id": {"S": id_},
        "itemKey": {"S": record.key},
        "modificationTime": {"S": record.modification_time},
        "sequenceNumber": {"S": record.sequence_number},
    }
    if record.keys is not None:  # a table whose key is not the seed's one string 'key'
        entry["itemKeys"] = {"M": record.keys}
    if record.declared_actor is not None:
        entry["declaredActor"] = {"S": record.declared_actor}
    return entry


def entry_id(event_id: str, attribute: str | None = None) -> str:
    """A version-4-format UUID derived from the record's eventID (and attribute).

    Derived, not random, so that a record Lambda delivers twice overwrites its own entries.
    """
    name = event_id if attribute is None else f"{event_id}\x1f{attribute}"
    return str(uuid.UUID(bytes=hashlib.blake2b(name.encode(), digest_size=16).digest(), version=4))


def change_kind(entry: Mapping[str, Any]) -> ChangeKind:
    """What an entry says happened, read off its shape."""
    if "updatedAttribute" in entry:
        return ChangeKind.UPDATED
    if "newValue" in entry:
        return ChangeKind.CREATED
    return ChangeKind.EXPIRED if entry.get("expired") else ChangeKind.DELETED


# -- reading an entry's fields: the one place that knows their type tags -----------------------


def id_of(entry: Entry) -> str:
    return str(entry["id"]["S"])


def item_key_of(entry: Entry) -> str:
    return str(entry["itemKey"]["S"])


def time_of(entry: Entry) -> str:
    """``modificationTime``, ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    return str(entry["modificationTime"]["S"])


def attribute_of(entry: Entry) -> str | None:
    """``updatedAttribute``: the attribute an update changed; None for a creation or deletion."""
    attribute = entry.get("updatedAttribute")
    return None if attribute is None else str(attribute["S"])


SortKey = tuple[str, int, str, str]
UNORDERED = -1  # the sequence number of an entry that has no readable one


def sort_key(entry: Entry) -> SortKey:
    """Chronological order of entries: time, then sequence number (as an integer), then attribute.

    Read leniently: an entry written around the producer (no decimal sequence number) sorts
    first within its time instead of failing the whole history.
    """
    sequence = entry.get("sequenceNumber", {}).get("S", "")
    return (
        entry["modificationTime"]["S"],
        int(sequence) if is_sequence_number(sequence) else UNORDERED,
        entry.get("updatedAttribute", {}).get("S", ""),
        entry["id"]["S"],
    )


def is_sequence_number(text: str) -> bool:
    """Whether ``text`` is a stream sequence number: a decimal string of at most 40 digits."""
    return SEQUENCE_NUMBER.fullmatch(text) is not None


def sequence_order(entry: Entry) -> tuple[int, str]:
    """The order changes happened in: sequence number (as an integer), then attribute name.

    Replaying follows it; the history's pages follow ``sort_key`` (time first), which orders the
    same entries alike wherever the stream's times rise with its sequence numbers.
    """
    return sort_key(entry)[1], attribute_of(entry) or ""
