"""Reading a DynamoDB stream with boto3 and shaping its records as Lambda delivers them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from chalicelib.images import stream_image


def to_lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A record from GetRecords (as boto3 parses it) -> the record Lambda puts in its event.

    Lambda adds ``eventSourceARN``, sends ``ApproximateCreationDateTime`` as epoch seconds (boto3
    parses it into a datetime) and binary values as base64 text (boto3 decodes them to bytes).
    """
    body = dict(record["dynamodb"])
    created = body.get("ApproximateCreationDateTime")
    if isinstance(created, dt.datetime):
        body["ApproximateCreationDateTime"] = created.timestamp()
    for name in ("Keys", "NewImage", "OldImage"):
        if name in body:
            body[name] = stream_image(body[name])
    shaped = {key: value for key, value in record.items() if key != "dynamodb"}
    shaped["dynamodb"] = body
    shaped["eventSourceARN"] = stream_arn
    return shaped


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
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            if not page["Records"]:
                break
            for record in page["Records"]:
                yield to_lambda_record(record, stream_arn)
            iterator = page.get("NextShardIterator")
