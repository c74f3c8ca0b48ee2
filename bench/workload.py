"""Synthetic stream records shaped exactly like the ones Lambda delivers (captured from moto).

A deterministic mix over a set of keys: each key is created, changed a few times (one or two
attributes at a time) and now and then deleted and created again, the way settings live.
Times are whole epoch seconds, 100 changes a second: DynamoDB Streams rounds
``ApproximateCreationDateTime`` down to the second (API reference, StreamRecord).
"""

from __future__ import annotations

import random
from typing import Any

STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/Configuration/stream/2024-09-11T09:00:17.927"
START = 1726045348.0


def _image(key: str, value: int, wide: bool, secrets: bool = False) -> dict[str, Any]:
    image: dict[str, Any] = {"key": {"S": key}, "value": {"N": str(value)}}
    if secrets:  # an attribute the dev stage redacts (*password*), so every record is copied and digested
        image["dbPassword"] = {"S": f"hunter2-{key}-{value}"}
    if wide:
        image.update(
            description={"S": f"setting {key}, tuned by the platform team"},
            owner={"S": "platform@example.com"},
            tags={"SS": ["cache", "runtime", key.lower()]},
            limits={"M": {"min": {"N": "0"}, "max": {"N": "86400"}, "step": {"N": "0.5"}}},
            history={"L": [{"N": str(value - 1)}, {"N": str(value)}]},
            enabled={"BOOL": True},
        )
    return image


def records(
    count: int, *, keys: int = 100, wide: bool = False, seed: int = 7, secrets: bool = False
) -> list[dict[str, Any]]:
    """``count`` records: INSERT, MODIFY and REMOVE over ``keys`` keys, sequence numbers rising."""
    rng = random.Random(seed)
    live: dict[str, dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    for number in range(count):
        key = f"SETTING_{rng.randrange(keys):04d}"
        old = live.get(key)
        value = rng.randrange(1, 100_000)
        if old is None:
            name, new = "INSERT", _image(key, value, wide, secrets)
        elif rng.random() < 0.1:
            name, new = "REMOVE", None
        else:
            name, new = "MODIFY", dict(old, value={"N": str(value)})
            if secrets:
                new["dbPassword"] = {"S": f"hunter2-{key}-{value}"}
            if wide and rng.random() < 0.5:
                new["owner"] = {"S": rng.choice(["platform@example.com", "sre@example.com"])}
        body: dict[str, Any] = {
            "ApproximateCreationDateTime": START + number // 100,
            "Keys": {"key": {"S": key}},
            "SequenceNumber": str(100000000000000000000 + number * 100),
            "SizeBytes": 60 if not wide else 400,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        if old is not None:
            body["OldImage"] = old
        if new is not None:
            body["NewImage"] = new
            live[key] = new
        else:
            live.pop(key, None)
        out.append(
            {
                "eventID": f"{seed:x}{number:030x}",
                "eventName": name,
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": body,
                "eventSourceARN": STREAM_ARN,
            }
        )
    return out


def event(count: int, **options: Any) -> dict[str, Any]:
    return {"Records": records(count, **options)}
