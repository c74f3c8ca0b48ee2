"""Pure: DynamoDB stream records -> audit entries. No I/O, no clock, no randomness.

An entry is a DynamoDB item in attribute-value form, ready for ``BatchWriteItem``; its values are
the stream's attribute values passed through unchanged, so every type round-trips exactly.
"""

from __future__ import annotations

import gc
import hashlib
import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from chalicelib.images import (
    MAX_ITEM_BYTES,
    AttributeValue,
    BadAttributeValue,
    Image,
    client_image,
    client_value,
    is_plain,
    item_size,
    same_value,
    value_size,
)

KEY_ATTRIBUTE = "key"
Entry = dict[str, AttributeValue]

# What DynamoDB's TTL process looks like in a REMOVE record.
TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


class PoisonRecord(ValueError):
    """A stream record that can never be audited; it is reported and skipped, never retried."""


@dataclass(slots=True)
class RecordChanges:
    """The audit entries of one stream record (none for a write that changed nothing).

    Not frozen: one is made per record, and a frozen dataclass's ``__init__`` costs four times as
    much (it sets each field through ``object.__setattr__``). Nothing changes one after planning.
    """

    event_id: str
    sequence_number: str
    entries: list[Entry]
    record: Any = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Rejected:
    """A poison record with the reason it cannot be audited."""

    reason: str
    record: Any
    event_id: str | None = None
    sequence_number: str | None = None


@dataclass(slots=True)
class BatchPlan:
    """What one Lambda event asks for: entries per record in sequence order, and poison records."""

    records: list[RecordChanges] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)

    @property
    def oldest_change(self) -> float | None:
        """Epoch seconds of the oldest change in the batch (None for a batch with none)."""
        if not self.records:
            return None
        return min(float(c.record["dynamodb"]["ApproximateCreationDateTime"]) for c in self.records)

    @property
    def entries(self) -> list[Entry]:
        """Every entry of the batch, in record order."""
        return [entry for changes in self.records for entry in changes.entries]


def entry_id(event_id: str, attribute: str | None = None) -> str:
    """A version-4-format UUID derived from the record (and attribute): redelivery overwrites.

    Equal to ``str(uuid.UUID(bytes=blake2b(name, digest_size=16), version=4))``, formatted
    without the UUID object because this runs once per entry on the hot path.
    """
    name = event_id if attribute is None else f"{event_id}\x1f{attribute}"
    h = hashlib.blake2b(name.encode(), digest_size=16).hexdigest()
    return "-".join((h[:8], h[8:12], "4" + h[13:16], _VARIANT[h[16]] + h[17:20], h[20:]))


# RFC 4122 variant: the top two bits of the clock_seq_hi nibble become 10.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def format_time(epoch_seconds: float) -> str:
    """Epoch seconds -> ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC (1726045348.0 -> 2024-09-11T09:02:28.000Z)."""
    seconds, millis = divmod(round(epoch_seconds * 1000), 1000)
    return f"{_second(seconds)}.{millis:03d}Z"


@lru_cache(maxsize=4096)
def _second(seconds: int) -> str:
    """The date and time to the second; a batch's records share few seconds, so this is cached."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def change_kind(entry: Mapping[str, Any]) -> str:
    """``created``, ``updated``, ``deleted`` or ``expired``, read off an entry's shape."""
    if "updatedAttribute" in entry:
        return "updated"
    if "newValue" in entry:
        return "created"
    return "expired" if entry.get("expired") else "deleted"


def plan_batch(event: Any) -> BatchPlan:
    """A Lambda DynamoDB Streams event -> entries per record, poison records set aside."""
    with _collector_paused():
        return _plan(event)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while entries are built.

    Building allocates tens of thousands of small dicts and creates no reference cycles; with the
    collector on, each young-generation pass also walks the whole event (up to 10,000 records),
    which measured at about half the time of this step (`make bench`). Reference counting still
    frees everything; the collector is restored as it was, even on error.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _plan(event: Any) -> BatchPlan:
    plan = BatchPlan()
    if not isinstance(event, Mapping) or not isinstance(event.get("Records"), list):
        plan.rejected.append(Rejected("event has no 'Records' list", event))
        return plan
    planned, rejected, seen = plan.records, plan.rejected, set()
    times: dict[float, AttributeValue] = {}  # a batch's records share few seconds
    previous, in_order = "", True
    for record in event["Records"]:
        try:
            changes = changes_for_record(record, times)
        except PoisonRecord as poison:
            rejected.append(_rejected(record, str(poison)))
            continue
        if changes.event_id in seen:  # the same record twice in one batch: its ids collide
            plan.duplicates.append(changes.event_id)
            continue
        seen.add(changes.event_id)
        planned.append(changes)
        sequence = changes.sequence_number
        # Lambda delivers a shard in order, so this only confirms it: decimal strings without
        # leading zeros compare as integers by (length, text); anything else is sorted below
        if in_order and (
            sequence[0] == "0"
            or len(sequence) < len(previous)
            or (len(sequence) == len(previous) and sequence <= previous)
        ):
            in_order = False
        previous = sequence
    if not in_order:  # the failure reported back must be the lowest sequence number not written
        planned.sort(key=lambda changes: int(changes.sequence_number))
    return plan


def _sequence_number(record: Any) -> str | None:
    body = record.get("dynamodb") if type(record) is dict else None
    sequence = body.get("SequenceNumber") if type(body) is dict else None
    if type(sequence) is str and sequence.isdigit() and sequence.isascii():
        return sequence
    return None


def _rejected(record: Any, reason: str) -> Rejected:
    event_id = record.get("eventID") if isinstance(record, dict) else None
    return Rejected(
        reason=reason,
        record=record,
        event_id=event_id if isinstance(event_id, str) else None,
        sequence_number=_sequence_number(record),
    )


def changes_for_record(record: dict[str, Any], times: dict[float, AttributeValue] | None = None) -> RecordChanges:
    """One stream record -> its audit entries; raises PoisonRecord when it can never be audited.

    ``times`` maps epoch seconds to formatted times for the records of one batch, which share
    few seconds.

    This runs once per record, so it is written for speed: events arrive as parsed JSON, so
    containers are checked as ``dict`` (several times cheaper than ABC checks), the regular case
    is checked inline, and each entry is one dict literal. Every irregular input falls through to
    a helper that says what is wrong, in the order the checks are listed here.
    """
    if type(record) is not dict:
        raise PoisonRecord(f"record is not an object: {record!r:.80}")
    event_id = record.get("eventID")
    if type(event_id) is not str or not event_id:
        raise PoisonRecord("record has no eventID")
    body = record.get("dynamodb")
    if type(body) is not dict:
        raise PoisonRecord("record has no 'dynamodb' object")
    sequence = body.get("SequenceNumber")
    if type(sequence) is not str or not sequence.isdigit() or not sequence.isascii():
        raise PoisonRecord("record has no decimal dynamodb.SequenceNumber")
    event_name = record.get("eventName")
    old, new = body.get("OldImage"), body.get("NewImage")
    if event_name == "MODIFY":  # only the attributes that changed are checked (in _modify_entries)
        if type(old) is not dict or type(new) is not dict:
            old = _image(body, "OldImage", required=True, checked=False)
            new = _image(body, "NewImage", required=True, checked=False)
    elif event_name == "INSERT" or event_name == "REMOVE":
        old = _image(body, "OldImage", required=event_name == "REMOVE", checked=True)
        new = _image(body, "NewImage", required=event_name == "INSERT", checked=True)
    else:
        raise PoisonRecord(f"unknown eventName {event_name!r}; expected INSERT, MODIFY or REMOVE")
    keys = body.get("Keys")
    key = keys.get(KEY_ATTRIBUTE) if type(keys) is dict else None
    if type(key) is not dict or len(key) != 1 or type(key.get("S")) is not str or not key["S"]:
        key = {"S": _item_key(body, new if new is not None else old)}
    # the stream's own {"S": key} goes into the entries as it is, and records of one time share
    # its {"S": time}: entries are never changed after planning
    if times is None:
        times = {}
    created = body.get("ApproximateCreationDateTime")
    # True == 1 in Python, so only real numbers may ask the cache
    when = times.get(created) if type(created) is float or type(created) is int else None
    if when is None:
        epoch = _epoch_seconds(body)
        when = times[epoch] = {"S": format_time(epoch)}
    position = {"S": sequence}
    if event_name == "MODIFY":
        assert old is not None and new is not None
        entries = _modify_entries(event_id, key, when, position, old, new)
    elif event_name == "INSERT":
        entries = [
            {"id": {"S": entry_id(event_id)}, "itemKey": key, "modificationTime": when,
             "sequenceNumber": position, "newValue": {"M": new}}
        ]  # fmt: skip
    else:
        removed: Entry = {"id": {"S": entry_id(event_id)}, "itemKey": key, "modificationTime": when,
                          "sequenceNumber": position, "oldValue": {"M": old}}  # fmt: skip
        if record.get("userIdentity") == TTL_IDENTITY:
            removed["expired"] = {"BOOL": True}
        entries = [removed]
    size = body.get("SizeBytes")  # the cheap bound inline: this runs once per record
    if entries and not (type(size) is int and 0 <= size <= _ROOMY) and _may_exceed_item_limit(body, old, new):
        try:
            for entry in entries:
                _check_size(entry)
        except BadAttributeValue as error:
            raise PoisonRecord(f"bad attribute value in image: {error}") from error
    return RecordChanges(event_id, sequence, entries, record)


def _modify_entries(
    event_id: str, key: AttributeValue, when: AttributeValue, position: AttributeValue, old: Image, new: Image
) -> list[Entry]:
    # the wire forms differ (equal forms are equal values); then the attributes the write removed
    changed = [name for name, value in new.items() if old.get(name) != value]
    if not old.keys() <= new.keys():
        changed.extend(old.keys() - new.keys())
    if len(changed) > 1:
        changed.sort()
    entries: list[Entry] = []
    for name in changed:
        if name == KEY_ATTRIBUTE:
            continue
        before, after = old.get(name), new.get(name)
        plain = True  # both strings or whole numbers, each with one wire form: unequal forms differ
        if before is not None and not is_plain(before):
            before, plain = _checked(before, "OldImage", name), False
        if after is not None and not is_plain(after):
            after, plain = _checked(after, "NewImage", name), False
        if not plain and before is not None and after is not None and same_value(before, after):
            continue
        entry: Entry = {
            "id": {"S": entry_id(event_id, name)},
            "itemKey": key,
            "modificationTime": when,
            "sequenceNumber": position,
            "updatedAttribute": {"S": name},
        }
        if before is not None:  # absent, not NULL: NULL is a value an attribute can hold
            entry["oldValue"] = before
        if after is not None:
            entry["newValue"] = after
        entries.append(entry)
    return entries


def _checked(value: Any, image: str, name: str) -> AttributeValue:
    try:
        return client_value(value)
    except BadAttributeValue as error:
        raise PoisonRecord(f"bad attribute value in {image}: attribute {name!r:.60}: {error}") from error


def _image(body: dict[str, Any], name: str, *, required: bool, checked: bool) -> Image | None:
    image = body.get(name)
    if image is None:
        if required:
            view = body.get("StreamViewType", "unknown")
            raise PoisonRecord(f"record has no {name} (stream view type {view}); the stream must be NEW_AND_OLD_IMAGES")
        return None
    if type(image) is not dict:
        raise PoisonRecord(f"{name} is not a map of attribute values")
    if not checked:
        return image
    try:
        return client_image(image)
    except BadAttributeValue as error:
        raise PoisonRecord(f"bad attribute value in {name}: {error}") from error


def _item_key(body: dict[str, Any], image: Image | None) -> str:
    keys = body.get("Keys")
    value = keys.get(KEY_ATTRIBUTE) if type(keys) is dict else None
    if value is None and image is not None:
        value = image.get(KEY_ATTRIBUTE)
    if value is None:
        raise PoisonRecord(f"record has no key attribute {KEY_ATTRIBUTE!r} in Keys or image")
    if type(value) is not dict or type(value.get("S")) is not str or len(value) != 1:
        raise PoisonRecord(f"key attribute {KEY_ATTRIBUTE!r} is not a string (S): {value!r:.80}")
    if not value["S"]:
        raise PoisonRecord(f"key attribute {KEY_ATTRIBUTE!r} is empty")
    return str(value["S"])


def _epoch_seconds(body: dict[str, Any]) -> float:
    created = body.get("ApproximateCreationDateTime")
    if type(created) is not float and type(created) is not int:
        raise PoisonRecord(f"dynamodb.ApproximateCreationDateTime is not epoch seconds: {created!r:.40}")
    if not math.isfinite(created) or not 0 <= created < 253402300800:  # year 10000
        raise PoisonRecord(f"dynamodb.ApproximateCreationDateTime out of range: {created!r}")
    return float(created)


# SizeBytes counts every attribute's name (a byte at least), so an image has at most SizeBytes
# members: a record this small or smaller gives entries well under the limit, unmeasured.
_ROOMY = (MAX_ITEM_BYTES - 4096) // 2


def _may_exceed_item_limit(body: dict[str, Any], old: Image | None, new: Image | None) -> bool:
    """Cheap filter: an entry is its record's values plus under 2 KB, so most need no measuring.

    DynamoDB's ``SizeBytes`` covers the record's keys and images; an entry adds its own
    attribute names, id, time and key (under 2 KB, the key itself at most 2 KB) and a byte per
    attribute where the whole image becomes a map. A record without a usable size is measured.
    Callers first try ``_ROOMY``, the bound below which an honest SizeBytes makes this False.
    """
    size = body.get("SizeBytes")
    if type(size) is not int or size < 0:
        return True
    members = max(len(old or ()), len(new or ()))
    return size + members + 4096 > MAX_ITEM_BYTES


def _check_size(entry: Entry) -> None:
    size = item_size(entry)
    if size > MAX_ITEM_BYTES:
        raise PoisonRecord(f"audit entry would be {size} bytes, over DynamoDB's {MAX_ITEM_BYTES}-byte item limit")


__all__ = [
    "KEY_ATTRIBUTE",
    "TTL_IDENTITY",
    "BatchPlan",
    "Entry",
    "PoisonRecord",
    "RecordChanges",
    "Rejected",
    "change_kind",
    "changes_for_record",
    "entry_id",
    "format_time",
    "plan_batch",
    "value_size",
]
