"""Pure: one Lambda event -> the entries of each record in sequence order, poison set aside.

``plan_batch`` plans a whole event; ``in_chunks`` cuts a large one into chunks the producer
audits one at a time, so that memory stays bounded whatever the batch size.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from chalicelib.attribute_values import MAX_ITEM_BYTES, item_size
from chalicelib.audit.entries import Entry, build_entries
from chalicelib.audit.records import PoisonRecord, read_record, sequence_number_of
from chalicelib.settings import DEFAULT_ACTOR_ATTRIBUTE

# An entry's own fields beside the record's values: the key (at most 2,048 bytes), id, time,
# sequence number and attribute names; generous, so that only records near the limit are measured.
ENTRY_OVERHEAD_BYTES = 4096
# Records audited at a time: a 10,000-record batch keeps only one chunk's entries alive at once
# (the figures are in the README); BatchWriteItem sees whole groups of 25 but for the last.
CHUNK_RECORDS = 1000


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
    table: str | None = None  # the audited table it came from, where the producer knows it


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
    sequence = sequence_number_of(record.get("dynamodb")) if isinstance(record, dict) else None
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
    # in_chunks sorted the producer's chunks already (this sort then costs one pass); an event
    # planned whole is sorted here, so "the first record not written" is the lowest number
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
        sequence_number=sequence_number_of(body),
    )
