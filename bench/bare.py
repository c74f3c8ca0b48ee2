"""The bare step: a reference for the build figures, never shipped.

It makes the same entries as ``chalicelib.audit.plan.plan_batch`` for well-formed records (the
benchmark checks that), with nothing else: no check of any value, key, time or size, no order,
no duplicate detection, no poison records. On bad input it crashes or writes garbage. What it
costs is what reading a record, hashing its ids and allocating its entries costs in interpreted
Python on this core; the gap between it and ``plan_batch`` is the price of the checks.
"""

from __future__ import annotations

from typing import Any

from chalicelib.audit.entries import entry_id
from chalicelib.audit.records import TTL_IDENTITY, format_time


def bare_entries(event: dict[str, Any]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    times: dict[float, dict[str, str]] = {}
    for record in event["Records"]:
        event_id, body = record["eventID"], record["dynamodb"]
        key, position = body["Keys"]["key"], {"S": body["SequenceNumber"]}
        created = body["ApproximateCreationDateTime"]
        when = times.get(created)
        if when is None:
            when = times[created] = {"S": format_time(created)}
        name = record["eventName"]
        if name == "INSERT":
            entries.append({"id": {"S": entry_id(event_id)}, "itemKey": key, "modificationTime": when,
                            "sequenceNumber": position, "newValue": {"M": body["NewImage"]}})  # fmt: skip
        elif name == "REMOVE":
            removed = {"id": {"S": entry_id(event_id)}, "itemKey": key, "modificationTime": when,
                       "sequenceNumber": position, "oldValue": {"M": body["OldImage"]}}  # fmt: skip
            if record.get("userIdentity") == TTL_IDENTITY:
                removed["expired"] = {"BOOL": True}
            entries.append(removed)
        else:
            old, new = body["OldImage"], body["NewImage"]
            for attribute in sorted(old.keys() | new.keys()):
                before, after = old.get(attribute), new.get(attribute)
                if before == after or attribute == "key":
                    continue
                entry = {"id": {"S": entry_id(event_id, attribute)}, "itemKey": key, "modificationTime": when,
                         "sequenceNumber": position, "updatedAttribute": {"S": attribute}}  # fmt: skip
                if before is not None:
                    entry["oldValue"] = before
                if after is not None:
                    entry["newValue"] = after
                entries.append(entry)
    return entries
