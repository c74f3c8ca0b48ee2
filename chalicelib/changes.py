"""Pure: DynamoDB stream records -> audit entries (SPEC.md, "Audit entries"). No I/O, no clock.

Each record is checked once (``read_record``, which raises ``PoisonRecord`` with the reason),
then its entries are built (``build_entries``). Every value an entry carries is checked: the
whole item of an INSERT or REMOVE, the changed attributes of a MODIFY. An entry is a DynamoDB
item in attribute-value form, ready for ``BatchWriteItem``; its values are the record's own, so
every type round-trips exactly.
"""

from __future__ import annotations

import gc
import hashlib
import math
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from chalicelib.images import (
    MAX_ITEM_BYTES,
    AttributeValue,
    BadAttributeValue,
    Image,
    client_image,
    client_value,
    item_size,
    same_value,
)

KEY_ATTRIBUTE = "key"
DEFAULT_ACTOR_ATTRIBUTE = "modifiedBy"  # the stamp a writer may put on an item: who it says it is
Entry = dict[str, AttributeValue]

# What DynamoDB's TTL process looks like in a REMOVE record.
TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
# An entry's own fields beside the record's values: the key (at most 2,048 bytes), id, time,
# sequence number and attribute names; generous, so that only records near the limit are measured.
ENTRY_OVERHEAD_BYTES = 4096
LAST_EPOCH_SECOND = 253402300799  # 9999-12-31T23:59:59Z: the format has four digits for the year
# Records audited at a time: a 10,000-record batch keeps only one chunk's entries alive at once
# (the figures are in the README); BatchWriteItem sees whole groups of 25 but for the last.
CHUNK_RECORDS = 1000


class EventName(Enum):
    """What a stream record says happened to one Configuration item."""

    INSERT = "INSERT"  # created: one entry holding the whole new item
    MODIFY = "MODIFY"  # changed: one entry per changed attribute, none if nothing changed
    REMOVE = "REMOVE"  # deleted, by a writer or by the TTL process: one entry holding the old item


class ChangeKind(Enum):
    """What one entry says happened; notifications carry it so subscribers can filter."""

    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    EXPIRED = "expired"  # deleted by DynamoDB's TTL process


class PoisonRecord(ValueError):
    """A stream record that can never be audited; it is reported and skipped, never retried."""


@dataclass(frozen=True)
class AttributeChange:
    """One attribute a MODIFY changed; an added one has no old value, a removed one no new value."""

    name: str
    old: AttributeValue | None
    new: AttributeValue | None


@dataclass(frozen=True)
class StreamRecord:
    """What the entries of one stream record carry, checked."""

    event_id: str
    event_name: EventName
    sequence_number: str
    key: str
    modification_time: str
    item: dict[str, AttributeValue] | None  # the item an INSERT created or a REMOVE deleted
    changes: list[AttributeChange]  # the attributes a MODIFY changed, by name
    expired: bool  # a REMOVE made by DynamoDB's TTL process
    declared_actor: str | None = None  # the new image's stamp; never a REMOVE's (it names the last writer)


@dataclass(frozen=True)
class RecordChanges:
    """The audit entries of one stream record (none for a write that changed nothing)."""

    event_id: str
    sequence_number: str
    entries: list[Entry]
    record: Any = field(repr=False, compare=False)


@dataclass(frozen=True)
class Poison:
    """A poison record, the reason it can never be audited, and what of it could be read."""

    reason: str
    record: Any
    event_id: str | None = None
    sequence_number: str | None = None


@dataclass
class BatchPlan:
    """What one Lambda event asks for: entries per record in sequence order, and poison records."""

    records: list[RecordChanges] = field(default_factory=list)
    poison: list[Poison] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)

    @property
    def entries(self) -> list[Entry]:
        """Every entry of the batch, in record order."""
        return [entry for changes in self.records for entry in changes.entries]

    @property
    def oldest_change(self) -> float | None:
        """Epoch seconds of the oldest change in the batch (None for a batch with none)."""
        times = [float(c.record["dynamodb"]["ApproximateCreationDateTime"]) for c in self.records]
        return min(times, default=None)


def plan_batch(
    event: Any, actor_attribute: str | None = DEFAULT_ACTOR_ATTRIBUTE, seen: set[str] | None = None
) -> BatchPlan:
    """A Lambda DynamoDB Streams event -> entries per record, in sequence order; poison set aside.

    ``actor_attribute`` names the stamp attribute (None: no stamp is read); ``seen`` holds the
    eventIDs already planned in earlier chunks of the same batch, so a duplicate is found across them.
    """
    with _collector_paused():
        return _plan_batch(event, actor_attribute, set() if seen is None else seen)


def in_chunks(event: Any, size: int = CHUNK_RECORDS) -> list[Any]:
    """The event as events of at most ``size`` records, in sequence-number order.

    A batch is audited a chunk at a time, so that only one chunk's entries are alive at once. A
    record whose sequence number cannot be read comes first (it is poison, and reported as such);
    an event without a ``Records`` list is one chunk as it is (it is poison whole).
    """
    if not isinstance(event, Mapping) or not isinstance(event.get("Records"), list):
        return [event]
    ordered = sorted(event["Records"], key=_sequence_order)
    return [{"Records": ordered[start : start + size]} for start in range(0, len(ordered), size)] or [event]


def _sequence_order(record: Any) -> int:
    sequence = _sequence_number(record.get("dynamodb")) if isinstance(record, dict) else None
    return -1 if sequence is None else int(sequence)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while entries are built; restore it as it was.

    Building makes no reference cycles, but each collection it triggers walks the whole event
    (up to 10,000 records). Paused, a 10,000-record batch builds in 26% (seed-shaped) to 37%
    (wide) less time, 90-200 ms, 2-4% of the batch end to end (interleaved A/B, this machine).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _plan_batch(event: Any, actor_attribute: str | None, seen: set[str]) -> BatchPlan:
    plan = BatchPlan()
    if not isinstance(event, Mapping) or not isinstance(event.get("Records"), list):
        plan.poison.append(Poison("event has no 'Records' list", event))
        return plan
    for record in event["Records"]:
        try:
            changes = changes_for_record(record, actor_attribute)
        except PoisonRecord as poison:
            plan.poison.append(_poison(record, str(poison)))
            continue
        if changes.event_id in seen:  # the same record twice in one batch: its ids collide
            plan.duplicates.append(changes.event_id)
            continue
        seen.add(changes.event_id)
        plan.records.append(changes)
    # Lambda delivers a shard in order; sorting anyway makes "the first record not written",
    # which the producer reports back, the lowest sequence number whatever the delivery
    plan.records.sort(key=lambda changes: int(changes.sequence_number))
    return plan


def changes_for_record(record: Any, actor_attribute: str | None = DEFAULT_ACTOR_ATTRIBUTE) -> RecordChanges:
    """One stream record -> its audit entries; PoisonRecord when it can never be audited."""
    checked = read_record(record, actor_attribute)
    entries = build_entries(checked)
    if _may_exceed_item_limit(record["dynamodb"]):
        for entry in entries:
            _check_size(entry)
    return RecordChanges(checked.event_id, checked.sequence_number, entries, record)


# -- check ----------------------------------------------------------------------------------


def read_record(record: Any, actor_attribute: str | None = DEFAULT_ACTOR_ATTRIBUTE) -> StreamRecord:
    """Check a record as Lambda delivers it; PoisonRecord names the first thing wrong with it."""
    if not isinstance(record, dict):
        raise PoisonRecord(f"record is not an object: {record!r:.80}")
    event_id = _event_id(record)
    body = record.get("dynamodb")
    if not isinstance(body, dict):
        raise PoisonRecord("record has no 'dynamodb' object")
    sequence_number = _sequence_number(body)
    if sequence_number is None:
        raise PoisonRecord("record has no decimal dynamodb.SequenceNumber")
    event_name = _event_name(record)
    old = _image(body, "OldImage", required=event_name in (EventName.MODIFY, EventName.REMOVE))
    new = _image(body, "NewImage", required=event_name in (EventName.INSERT, EventName.MODIFY))
    key = _item_key(body, new if new is not None else old)
    modification_time = format_time(_epoch_seconds(body))
    if event_name is EventName.MODIFY:
        assert old is not None and new is not None
        item, changes = None, changed_attributes(old, new, actor_attribute)
    elif event_name is EventName.INSERT:
        assert new is not None
        item, changes = _checked_image(new, "NewImage"), []
    else:
        assert old is not None
        item, changes = _checked_image(old, "OldImage"), []
    return StreamRecord(
        event_id=event_id,
        event_name=event_name,
        sequence_number=sequence_number,
        key=key,
        modification_time=modification_time,
        item=item,
        changes=changes,
        expired=event_name is EventName.REMOVE and record.get("userIdentity") == TTL_IDENTITY,
        declared_actor=_stamp(new, actor_attribute) if event_name is not EventName.REMOVE else None,
    )


def _stamp(image: Image | None, actor_attribute: str | None) -> str | None:
    """The writer's stamp: a non-empty string in the new image; anything else is no stamp."""
    value = image.get(actor_attribute) if image is not None and actor_attribute else None
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get("S"), str) and value["S"]:
        return str(value["S"])
    return None


def _event_id(record: dict[str, Any]) -> str:
    event_id = record.get("eventID")
    if not isinstance(event_id, str) or not event_id:
        raise PoisonRecord("record has no eventID")
    return event_id


def _sequence_number(body: Any) -> str | None:
    sequence = body.get("SequenceNumber") if isinstance(body, dict) else None
    if isinstance(sequence, str) and sequence.isdigit() and sequence.isascii():
        return sequence
    return None


def _event_name(record: dict[str, Any]) -> EventName:
    name = record.get("eventName")
    try:
        return EventName(name)
    except ValueError:
        raise PoisonRecord(f"unknown eventName {name!r:.40}; expected INSERT, MODIFY or REMOVE") from None


def _image(body: dict[str, Any], name: str, *, required: bool) -> Image | None:
    image = body.get(name)
    if image is None:
        if required:
            view = body.get("StreamViewType", "unknown")
            raise PoisonRecord(f"record has no {name} (stream view type {view}); the stream must be NEW_AND_OLD_IMAGES")
        return None
    if not isinstance(image, dict):
        raise PoisonRecord(f"{name} is not a map of attribute values")
    return image


def _checked_image(image: Image, image_name: str) -> dict[str, AttributeValue]:
    """A whole image, checked: the item an INSERT created or a REMOVE deleted."""
    try:
        return client_image(image)  # its error names the attribute
    except BadAttributeValue as error:
        raise PoisonRecord(f"bad attribute value in {image_name}: {error}") from error


def _checked(value: Any, image_name: str, attribute: str) -> AttributeValue:
    """One value as boto3's client sends it; PoisonRecord names its image and attribute."""
    try:
        return client_value(value)
    except BadAttributeValue as error:
        raise PoisonRecord(f"bad attribute value in {image_name}: attribute {attribute!r:.60}: {error}") from error


def changed_attributes(old: Image, new: Image, actor_attribute: str | None = None) -> list[AttributeChange]:
    """The attributes but the key and the stamp whose value a MODIFY changed, by name, checked.

    The stamp says who wrote; a write that only re-stamps an item changed no setting.

    Equal wire forms are equal values; different ones are checked and compared as DynamoDB
    values, so that ``{"N": "1"}`` and ``{"N": "1.0"}``, or a set in another order, is no change.
    """
    changes = []
    for name in sorted(old.keys() | new.keys()):
        before, after = old.get(name), new.get(name)
        if name in (KEY_ATTRIBUTE, actor_attribute) or before == after:
            continue
        before = None if before is None else _checked(before, "OldImage", name)
        after = None if after is None else _checked(after, "NewImage", name)
        if before is not None and after is not None and same_value(before, after):
            continue
        changes.append(AttributeChange(name, before, after))
    return changes


def _item_key(body: dict[str, Any], image: Image | None) -> str:
    keys = body.get("Keys")
    value = keys.get(KEY_ATTRIBUTE) if isinstance(keys, dict) else None
    if value is None and image is not None:
        value = image.get(KEY_ATTRIBUTE)
    if value is None:
        raise PoisonRecord(f"record has no key attribute {KEY_ATTRIBUTE!r} in Keys or image")
    if not isinstance(value, dict) or len(value) != 1 or not isinstance(value.get("S"), str):
        raise PoisonRecord(f"key attribute {KEY_ATTRIBUTE!r} is not a string (S): {value!r:.80}")
    if not value["S"]:
        raise PoisonRecord(f"key attribute {KEY_ATTRIBUTE!r} is empty")
    return str(value["S"])


def _epoch_seconds(body: dict[str, Any]) -> float:
    if "ApproximateCreationDateTime" not in body:
        raise PoisonRecord("record has no dynamodb.ApproximateCreationDateTime")
    created = body["ApproximateCreationDateTime"]
    if isinstance(created, bool) or not isinstance(created, int | float):
        raise PoisonRecord(f"dynamodb.ApproximateCreationDateTime is not epoch seconds: {created!r:.40}")
    if not math.isfinite(created) or created < 0:
        raise PoisonRecord(f"dynamodb.ApproximateCreationDateTime out of range: {created!r}")
    if created > LAST_EPOCH_SECOND:
        hint = "; it looks like milliseconds, not seconds" if created / 1000 <= LAST_EPOCH_SECOND else ""
        raise PoisonRecord(f"dynamodb.ApproximateCreationDateTime out of range: {created!r}{hint}")
    return float(created)


def _may_exceed_item_limit(body: dict[str, Any]) -> bool:
    """Whether an entry of this record could be over DynamoDB's item limit, so must be measured.

    An entry holds at most the record's images, which the record's ``SizeBytes`` counts, plus a
    byte per attribute and its own fields (id, key, time, sequence number, names: under
    ``ENTRY_OVERHEAD_BYTES``). A record without a usable ``SizeBytes`` is measured. Should a
    record understate it, DynamoDB refuses the entry, and the repository sets the record aside
    as poison all the same.
    """
    size = body.get("SizeBytes")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        return True
    attributes = max(len(body.get("OldImage") or ()), len(body.get("NewImage") or ()))
    return size + attributes + ENTRY_OVERHEAD_BYTES > MAX_ITEM_BYTES


def _check_size(entry: Entry) -> None:
    size = item_size(entry)
    if size > MAX_ITEM_BYTES:
        raise PoisonRecord(f"audit entry would be {size} bytes, over DynamoDB's {MAX_ITEM_BYTES}-byte item limit")


def _poison(record: Any, reason: str) -> Poison:
    """A poison record with whatever of its identity can still be read."""
    event_id = record.get("eventID") if isinstance(record, dict) else None
    body = record.get("dynamodb") if isinstance(record, dict) else None
    return Poison(
        reason=reason,
        record=record,
        event_id=event_id if isinstance(event_id, str) else None,
        sequence_number=_sequence_number(body),
    )


# -- build ----------------------------------------------------------------------------------


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
    if record.declared_actor is not None:
        entry["declaredActor"] = {"S": record.declared_actor}
    return entry


def entry_id(event_id: str, attribute: str | None = None) -> str:
    """A version-4-format UUID derived from the record's eventID (and attribute).

    Derived, not random, so that a record Lambda delivers twice overwrites its own entries.
    """
    name = event_id if attribute is None else f"{event_id}\x1f{attribute}"
    return str(uuid.UUID(bytes=hashlib.blake2b(name.encode(), digest_size=16).digest(), version=4))


def format_time(epoch_seconds: float) -> str:
    """Epoch seconds -> ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC (1726045348.0 -> 2024-09-11T09:02:28.000Z)."""
    seconds, millis = divmod(round(epoch_seconds * 1000), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def change_kind(entry: Mapping[str, Any]) -> ChangeKind:
    """What an entry says happened, read off its shape."""
    if "updatedAttribute" in entry:
        return ChangeKind.UPDATED
    if "newValue" in entry:
        return ChangeKind.CREATED
    return ChangeKind.EXPIRED if entry.get("expired") else ChangeKind.DELETED
