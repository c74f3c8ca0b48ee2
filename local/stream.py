"""Reading a DynamoDB stream with boto3 and handing its records on as Lambda delivers them.

Records are taken from GetRecords' JSON as it came over the wire, not from what boto3 parses out
of it: the wire form is what Lambda forwards (binary as base64 text, ``ApproximateCreationDateTime``
in epoch seconds), and boto3's parser fails a whole page on one record it cannot parse (moto
sends an item with an empty attribute name as a bare ``"N": "5"``), which would stop the stream
for good. A record the function cannot make sense of reaches it as it is, and it sets it aside.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from typing import Any

_BEFORE_PARSE = "before-parse.dynamodb-streams.GetRecords"


def to_lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A record as GetRecords sent it -> the record Lambda puts in its event: the same, plus
    ``eventSourceARN``, and moto's binary keys as DynamoDB sends them (see ``_moto_binary_keys``)."""
    shaped = {**record, "eventSourceARN": stream_arn}
    body = record.get("dynamodb")
    if isinstance(body, dict) and isinstance(body.get("Keys"), dict):
        shaped["dynamodb"] = {**body, "Keys": _moto_binary_keys(body)}
    return shaped


def _moto_binary_keys(body: dict[str, Any]) -> dict[str, Any]:
    """moto (5.2) base64-encodes a binary key attribute twice in ``Keys`` ({"B": "QVA4PQ=="} for
    b"\x00\xff"), though once in the images ({"B": "AP8="}), as DynamoDB does everywhere. Where an
    image holds the key attribute and ``Keys`` holds its base64 once more, ``Keys`` takes the image's."""
    keys = dict(body["Keys"])
    images = [image for image in (body.get("NewImage"), body.get("OldImage")) if isinstance(image, dict)]
    for name, value in keys.items():
        held = next((image[name] for image in images if isinstance(image.get(name), dict)), None)
        if isinstance(value, dict) and isinstance(held, dict) and set(value) == set(held) == {"B"}:
            try:
                if base64.b64decode(value["B"], validate=True).decode("ascii") == held["B"]:
                    keys[name] = held
            except (binascii.Error, ValueError):
                continue  # not moto's doubling: the record goes on as it came
    return keys


def get_records(streams: Any, iterator: str, limit: int = 1000) -> dict[str, Any]:
    """GetRecords through a boto3 client, its ``Records`` exactly as they were sent (JSON, unparsed)."""
    streams.meta.events.register(_BEFORE_PARSE, _records_as_sent)
    try:
        page: dict[str, Any] = streams.get_records(ShardIterator=iterator, Limit=limit)
    finally:
        streams.meta.events.unregister(_BEFORE_PARSE, _records_as_sent)
    return page


def _records_as_sent(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    """Take ``Records`` out of a GetRecords response before boto3 parses the rest."""
    if response_dict.get("status_code") != 200:
        return  # an error: boto3 reports it as usual
    body = json.loads(response_dict["body"])
    customized_response_dict["Records"] = body.pop("Records", [])  # boto3 adds these to what it parsed
    response_dict["body"] = json.dumps(body).encode()


def shard_ids(streams: Any, stream_arn: str) -> list[str]:
    """Every shard of the stream, parents before children."""
    shards: list[dict[str, Any]] = []
    start: dict[str, str] = {}
    while True:
        description = streams.describe_stream(StreamArn=stream_arn, **start)["StreamDescription"]
        shards.extend(description["Shards"])
        last = description.get("LastEvaluatedShardId")
        if not last:
            break
        start = {"ExclusiveStartShardId": last}
    return [shard["ShardId"] for shard in shards]


def read_all(streams: Any, stream_arn: str, max_calls: int = 1000) -> Iterator[dict[str, Any]]:
    """Every record now in the stream, from TRIM_HORIZON, already in Lambda's shape."""
    for shard_id in shard_ids(streams, stream_arn):
        iterator = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")[
            "ShardIterator"
        ]
        for _ in range(max_calls):
            if not iterator:
                break
            page = get_records(streams, iterator)
            if not page["Records"]:
                break
            for record in page["Records"]:
                yield to_lambda_record(record, stream_arn)
            iterator = page.get("NextShardIterator")
