"""Pure: one DynamoDB stream record, checked (SPEC.md, "Audit entries"). No I/O, no clock.

``read_record`` checks a record as Lambda delivers it, once, with one named helper per field,
each raising ``PoisonRecord`` with the reason, and returns a ``StreamRecord``: what the record's
entries will carry. Every value an entry carries is checked: the whole item of an INSERT or
REMOVE, the changed attributes of a MODIFY.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time
from collections.abc import Collection
from dataclasses import dataclass
from enum import Enum
from typing import Any

from chalicelib.attribute_values import (
    AttributeValue,
    BadAttributeValue,
    Image,
    client_image,
    client_value,
    same_value,
)
from chalicelib.audit.keys import SEED_KEY, BadKey, is_seed_key, key_text
from chalicelib.settings import DEFAULT_ACTOR_ATTRIBUTE

KEY_ATTRIBUTE = SEED_KEY  # the seed table's key; any table's key attributes are the names in Keys
# What DynamoDB's TTL process looks like in a REMOVE record.
TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
SEQUENCE_NUMBER = re.compile(r"\d{1,40}", re.ASCII)  # DynamoDB Streams' are decimal, at most 40 digits
LAST_EPOCH_SECOND = 253402300799  # 9999-12-31T23:59:59Z: the format has four digits for the year


class EventName(Enum):
    """What a stream record says happened to one Configuration item."""

    INSERT = "INSERT"  # created: one entry holding the whole new item
    MODIFY = "MODIFY"  # changed: one entry per changed attribute, none if nothing changed
    REMOVE = "REMOVE"  # deleted, by a writer or by the TTL process: one entry holding the old item


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
    key: str  # the item's key as text (audit/keys.py)
    keys: dict[str, AttributeValue] | None  # the typed key, for a table whose key is not the seed's one 'key'
    modification_time: str
    item: dict[str, AttributeValue] | None  # the item an INSERT created or a REMOVE deleted
    changes: list[AttributeChange]  # the attributes a MODIFY changed, by name
    expired: bool  # a REMOVE made by DynamoDB's TTL process
    declared_actor: str | None = None  # the new image's stamp; never a REMOVE's (it names the last writer)


def read_record(record: Any, actor_attribute: str | None = DEFAULT_ACTOR_ATTRIBUTE) -> StreamRecord:
    """Check a record as Lambda delivers it; PoisonRecord names the first thing wrong with it."""
    if not isinstance(record, dict):
        raise PoisonRecord(f"record is not an object: {record!r:.80}")
    event_id = _event_id(record)
    body = record.get("dynamodb")
    if not isinstance(body, dict):
        raise PoisonRecord("record has no 'dynamodb' object")
    sequence_number = sequence_number_of(body)
    if sequence_number is None:
        raise PoisonRecord("record has no decimal dynamodb.SequenceNumber")
    event_name = _event_name(record)
    old = _image(body, "OldImage", required=event_name in (EventName.MODIFY, EventName.REMOVE))
    new = _image(body, "NewImage", required=event_name in (EventName.INSERT, EventName.MODIFY))
    keys, key = _keys(body, [image for image in (old, new) if image is not None])
    modification_time = format_time(_epoch_seconds(body))
    if event_name is EventName.MODIFY:
        assert old is not None and new is not None
        item, changes = None, changed_attributes(old, new, actor_attribute, key_names=set(keys))
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
        keys=None if is_seed_key(keys) else _checked_image(keys, "Keys"),
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


def sequence_number_of(body: Any) -> str | None:
    """A record body's SequenceNumber where it is a decimal string, else None."""
    sequence = body.get("SequenceNumber") if isinstance(body, dict) else None
    if isinstance(sequence, str) and SEQUENCE_NUMBER.fullmatch(sequence):
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


def changed_attributes(
    old: Image, new: Image, actor_attribute: str | None = None, key_names: Collection[str] = (KEY_ATTRIBUTE,)
) -> list[AttributeChange]:
    """The attributes but the key and the stamp whose value a MODIFY changed, by name, checked.

    Key attributes never change (an item with another key is another item); the stamp says who
    wrote, and a write that only re-stamps an item changed no setting.

    Equal wire forms are equal values; different ones are checked and compared as DynamoDB
    values, so that ``{"N": "1"}`` and ``{"N": "1.0"}``, or a set in another order, is no change.
    """
    changes = []
    for name in sorted(old.keys() | new.keys()):
        before, after = old.get(name), new.get(name)
        if name in key_names or name == actor_attribute or before == after:
            continue
        before = None if before is None else _checked(before, "OldImage", name)
        after = None if after is None else _checked(after, "NewImage", name)
        if before is not None and after is not None and same_value(before, after):
            continue
        changes.append(AttributeChange(name, before, after))
    return changes


def _keys(body: dict[str, Any], images: list[Image]) -> tuple[dict[str, Any], str]:
    """``dynamodb.Keys``, checked (a usable key, which every image holds as it is), and its text."""
    keys: Any = body.get("Keys")
    try:
        text = key_text(keys)
    except BadKey as error:
        raise PoisonRecord(f"record has no usable Keys: {error}") from None
    for image in images:
        for name, value in keys.items():
            if image.get(name) != value:
                raise PoisonRecord(f"the image's key attribute {name!r:.60} differs from Keys: {image.get(name)!r:.60}")
    return dict(keys), text


def _epoch_seconds(body: dict[str, Any]) -> float:
    if "ApproximateCreationDateTime" not in body:
        raise PoisonRecord("record has no dynamodb.ApproximateCreationDateTime")
    created = body["ApproximateCreationDateTime"]
    if isinstance(created, bool) or not isinstance(created, int | float):
        raise PoisonRecord(f"dynamodb.ApproximateCreationDateTime is not epoch seconds: {created!r:.40}")
    if not math.isfinite(created) or created < 0:
        raise PoisonRecord(f"dynamodb.ApproximateCreationDateTime out of range: {created!r}")
    # as format_time rounds it to the millisecond: past 9999-12-31T23:59:59.999Z is out of the format
    if round(created * 1000) > LAST_EPOCH_SECOND * 1000 + 999:
        hint = "; it looks like milliseconds, not seconds" if created / 1000 <= LAST_EPOCH_SECOND else ""
        raise PoisonRecord(f"dynamodb.ApproximateCreationDateTime out of range: {created!r}{hint}")
    return float(created)


def format_time(epoch_seconds: float) -> str:
    """Epoch seconds -> ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC (1726045348.0 -> 2024-09-11T09:02:28.000Z)."""
    seconds, millis = divmod(round(epoch_seconds * 1000), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def entry_time(moment: dt.datetime, bound: bool = False) -> str:
    """An aware datetime as the entries hold times (UTC, to the millisecond, a four-digit year):
    cut, or for a window's ``bound`` rounded up to the next millisecond (an entry's time t is at or
    after x exactly when t is at or after x rounded up). OverflowError outside years 0001-9999."""
    moment = moment.astimezone(dt.UTC)
    if bound and moment.microsecond % 1000:
        moment += dt.timedelta(microseconds=1000 - moment.microsecond % 1000)
    # %Y gives 999, not 0999, for years before 1000: the year is written out with its four digits
    return f"{moment.year:04d}" + moment.strftime("-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def hour_before(entries_time: str) -> str:
    """The entries' time one hour before ``entries_time``, or the first moment the format holds."""
    moment = dt.datetime.strptime(entries_time, "%Y-%m-%dT%H:%M:%S.%f%z")
    try:
        return entry_time(moment - dt.timedelta(hours=1))
    except OverflowError:  # within the first hour of year 0001
        return "0001-01-01T00:00:00.000Z"
