"""Who made each change, joined at read time (the Audit table is never updated; a call CloudTrail
delivers late shows on the next read): an entry's ``actor`` (or ``actorCandidates``) from the
calls recorded near its time, the TTL process, or the item's own declared stamp."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from boto3.dynamodb.types import TypeSerializer

from chalicelib.actors.cloudtrail import Call
from chalicelib.actors.repository import ActorRepository
from chalicelib.audit.entries import Entry, item_key_of, time_of
from chalicelib.audit.keys import BadKey, key_values, loose_key_text

MATCH_SECONDS = 2  # CloudTrail's eventTime is to the second; the stream's time is approximate
TTL_ACTOR = {"arn": "dynamodb.amazonaws.com", "type": "Service", "source": "ttl"}
_serializer = TypeSerializer()


def with_actors(entries: list[Entry], actors: ActorRepository | None, table: str) -> list[Entry]:
    """Each entry of one key of the audited ``table`` with ``actor`` or ``actorCandidates`` where
    known, one Query a page; only calls CloudTrail recorded on that table can name an entry.

    The stored ``declaredActor`` is shown as an ``actor`` of source ``declared``, where no
    CloudTrail call outranks it.
    """
    if not entries:
        return entries
    calls = []
    span = window(time_of(entry) for entry in entries)
    if actors is not None and span is not None:
        calls = actors.calls(table, cloudtrail_key(entries[0]), *span)
    shown = []
    for entry in entries:
        fields = actor_fields(_facts(entry), calls)
        visible = {name: value for name, value in entry.items() if name != "declaredActor"}
        visible.update({name: _serializer.serialize(value) for name, value in fields.items()})
        shown.append(visible)
    return shown


def cloudtrail_key(entry: Entry) -> str:
    """The entry's key as CloudTrail names it (untyped values): what AuditActors is keyed by."""
    keys = entry.get("itemKeys")
    try:
        return item_key_of(entry) if keys is None else loose_key_text(key_values(keys["M"]))
    except (BadKey, KeyError, TypeError):  # an entry written around the producer: joined by its key text
        return item_key_of(entry)


def _facts(entry: Entry) -> dict[str, Any]:
    return {
        "itemKey": cloudtrail_key(entry),
        "modificationTime": time_of(entry),
        "expired": entry.get("expired", {}).get("BOOL") is True,
        "declaredActor": entry.get("declaredActor", {}).get("S"),
    }


def window(modification_times: Iterable[str]) -> tuple[str, str] | None:
    """The eventTime range that can match any of these entry times: their seconds, +-2 s.

    Clamped to the format's range (years 0001 to 9999); None when no time is readable.
    """
    seconds = sorted(second for time in modification_times if (second := _second(time)) is not None)
    if not seconds:
        return None
    return _event_time(_shifted(seconds[0], -MATCH_SECONDS)), _event_time(_shifted(seconds[-1], MATCH_SECONDS))


def actor_fields(entry: Mapping[str, Any], calls: Iterable[Call]) -> dict[str, Any]:
    """``{"actor": ...}``, ``{"actorCandidates": [...]}`` or ``{}`` for one plain-JSON entry.

    A TTL deletion is the TTL process's. Otherwise the calls on the entry's key whose eventTime
    lies within 2 s of the entry's time truncated to the second: one principal is the actor,
    several are candidates (never a guess); none, and the item's declared stamp speaks, if any.
    """
    if entry.get("expired") is True:
        return {"actor": dict(TTL_ACTOR)}
    low, high = window([entry["modificationTime"]]) or ("~", "")  # an unreadable time matches no call
    principals = {(c.arn, c.type) for c in calls if c.item_key == entry["itemKey"] and low <= c.event_time <= high}
    found = [{"arn": arn, "type": kind, "source": "cloudtrail"} for arn, kind in sorted(principals)]
    if len(found) == 1:
        return {"actor": found[0]}
    if found:
        return {"actorCandidates": found}
    declared = entry.get("declaredActor")
    if isinstance(declared, str) and declared:
        return {"actor": {"arn": declared, "type": "Declared", "source": "declared"}}
    return {}


def _second(modification_time: str) -> datetime | None:
    try:
        return datetime.strptime(modification_time[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:  # an entry written around the producer: no call can be matched to it
        return None


def _shifted(moment: datetime, seconds: int) -> datetime:
    try:
        return moment + timedelta(seconds=seconds)
    except OverflowError:  # past year 9999 or before year 1: the format's edge is as far as it goes
        return (datetime.max if seconds > 0 else datetime.min).replace(tzinfo=UTC)


def _event_time(moment: datetime) -> str:
    # not strftime: its %Y drops the leading zeros of years before 1000, which breaks text order
    return f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}Z"
