"""The local stack's CloudTrail logs a write's key as CloudTrail does, for any key schema, so the
recorder names the same key an entry of that write carries."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.actors.attribution import cloudtrail_key
from chalicelib.actors.cloudtrail import calls_in
from chalicelib.audit.plan import plan_batch
from config_audit.cloudtrail_player import CloudTrailPlayer, request_parameters

IDENTITY = {
    "type": "IAMUser",
    "arn": "arn:aws:iam::123456789012:user/ops",
    "accountId": "123456789012",
    "principalId": "X",
}


@pytest.mark.parametrize(
    ("keys", "item_keys"),
    [
        ({"key": {"S": "K"}}, {"key": {"S": "K"}}),
        ({"pk": {"S": "tenant-1"}, "sk": {"N": "7"}}, {"pk": {"S": "tenant-1"}, "sk": {"N": "7"}}),
        ({"blob": {"B": b"\x00\xff"}}, {"blob": {"B": "AP8="}}),
    ],
    ids=["seed", "pk/sk with a number", "binary"],
)
def test_a_put_is_attributed_under_the_key_its_entry_carries(keys: dict[str, Any], item_keys: dict[str, Any]) -> None:
    # GIVEN a PutItem of an item (the client holds binary as bytes), on a table keyed as given
    params = {"TableName": "T", "Item": {**keys, "value": {"N": "1"}}}
    names = frozenset(keys)
    event = CloudTrailPlayer(lambda _e: None, IDENTITY, "us-east-1").event("PutItem", params)
    event["detail"]["requestParameters"] = request_parameters("PutItem", params, lambda _table: names)
    # WHEN the recorder reads it, and the same write's stream record is audited
    [call] = calls_in(event, "T")
    record = {"eventID": "e", "eventName": "INSERT", "dynamodb": {"ApproximateCreationDateTime": 1.0, "SequenceNumber": "1",
              "Keys": item_keys, "NewImage": {**item_keys, "value": {"N": "1"}}}}  # fmt: skip
    [entry] = plan_batch({"Records": [record]}).entries
    # THEN both name the key alike: the call attributes the entry
    assert call.item_key == cloudtrail_key(entry)
    assert "value" not in str(event["detail"]["requestParameters"]["key"])  # no other value is logged
