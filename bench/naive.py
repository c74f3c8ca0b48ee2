"""The baseline every tutorial solution uses, written here only to be measured against.

One ``PutItem`` per change, a random uuid4 id, the function's own clock for the time, images
deserialized to Python and re-serialized by the resource layer. (It is also wrong: redelivery
duplicates entries and the time is not the change's. That is the point of measuring it.)
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

_deserializer = TypeDeserializer()


def _plain(image: dict[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in image.items()}


def naive_handler(event: dict[str, Any], table: Any) -> None:
    for record in event["Records"]:
        body = record["dynamodb"]
        key = body["Keys"]["key"]["S"]
        now = dt.datetime.now(dt.UTC).isoformat()
        if record["eventName"] == "INSERT":
            table.put_item(Item={"id": str(uuid.uuid4()), "itemKey": key, "modificationTime": now,
                                 "newValue": _plain(body["NewImage"])})  # fmt: skip
        elif record["eventName"] == "REMOVE":
            table.put_item(Item={"id": str(uuid.uuid4()), "itemKey": key, "modificationTime": now,
                                 "oldValue": _plain(body["OldImage"])})  # fmt: skip
        else:
            old, new = _plain(body["OldImage"]), _plain(body["NewImage"])
            for name in old.keys() | new.keys():
                if name != "key" and old.get(name) != new.get(name):
                    item = {
                        "id": str(uuid.uuid4()),
                        "itemKey": key,
                        "modificationTime": now,
                        "updatedAttribute": name,
                    }
                    if name in old:
                        item["oldValue"] = old[name]
                    if name in new:
                        item["newValue"] = new[name]
                    table.put_item(Item=item)
