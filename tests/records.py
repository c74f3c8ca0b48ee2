"""Stream records as Lambda delivers them, built by hand for unit tests."""

from __future__ import annotations

from typing import Any

TTL = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def record(
    event_name: str,
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
    *,
    event_id: str = "e1",
    sequence: str = "100",
    created: float = 1726045348.0,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "ApproximateCreationDateTime": created,
        "Keys": {"key": (new or old or {"key": {"S": "K"}})["key"]},
        "SequenceNumber": sequence,
        "SizeBytes": 100,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if old is not None:
        body["OldImage"] = old
    if new is not None:
        body["NewImage"] = new
    return {"eventID": event_id, "eventName": event_name, "dynamodb": body, **extra}


def item(key: str = "CACHE_TTL_SEC", /, **values: dict[str, Any]) -> dict[str, Any]:
    return {"key": {"S": key}, **values}


def created(key: str, sequence: str, value: str = "1") -> dict[str, Any]:
    """The INSERT record of ``key`` with ``value``, its eventID derived from key and sequence number."""
    return record("INSERT", new=item(key, value={"N": value}), event_id=f"{key}-{sequence}", sequence=sequence)


def poison(sequence: str) -> dict[str, Any]:
    """A record that can never be audited (it has no image), at a sequence number."""
    return {"eventID": f"poison-{sequence}", "eventName": "INSERT", "dynamodb": {"SequenceNumber": sequence}}
