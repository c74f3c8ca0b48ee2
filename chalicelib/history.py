"""A page of a key's history with who made each change: the join at read time (the Audit table
is never updated; a call CloudTrail delivers late shows on the next read)."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.types import TypeSerializer

from chalicelib.actor_repository import ActorRepository
from chalicelib.actors import actor_fields, window
from chalicelib.changes import Entry

_serializer = TypeSerializer()


def with_actors(entries: list[Entry], actors: ActorRepository | None) -> list[Entry]:
    """Each entry of one key with ``actor`` or ``actorCandidates`` where known, one Query a page.

    The stored ``declaredActor`` is shown as an ``actor`` of source ``declared``, where no
    CloudTrail call outranks it.
    """
    if not entries:
        return entries
    calls = []
    span = window(entry["modificationTime"]["S"] for entry in entries)
    if actors is not None and span is not None:
        calls = actors.calls(entries[0]["itemKey"]["S"], *span)
    shown = []
    for entry in entries:
        fields = actor_fields(_facts(entry), calls)
        visible = {name: value for name, value in entry.items() if name != "declaredActor"}
        visible.update({name: _serializer.serialize(value) for name, value in fields.items()})
        shown.append(visible)
    return shown


def _facts(entry: Entry) -> dict[str, Any]:
    return {
        "itemKey": entry["itemKey"]["S"],
        "modificationTime": entry["modificationTime"]["S"],
        "expired": entry.get("expired", {}).get("BOOL") is True,
        "declaredActor": entry.get("declaredActor", {}).get("S"),
    }
