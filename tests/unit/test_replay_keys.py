"""Replaying entries of any key schema: the typed key comes from the entries, never assumed."""

from __future__ import annotations

from chalicelib.audit.plan import plan_batch
from config_audit.replay import replay


def test_an_update_of_an_item_older_than_its_history_rebuilds_it_under_its_typed_key() -> None:
    keys = {"pk": {"S": "tenant-1"}, "sk": {"N": "7"}}
    record = {
        "eventID": "e1", "eventName": "MODIFY",
        "dynamodb": {"ApproximateCreationDateTime": 1726045348.0, "Keys": keys, "SequenceNumber": "1",
                     "OldImage": {**keys, "v": {"N": "1"}}, "NewImage": {**keys, "v": {"N": "2"}}},
    }  # fmt: skip
    state = replay(plan_batch({"Records": [record]}).entries)
    assert state == {'{"pk":"tenant-1","sk":7}': {**keys, "v": {"N": "2"}}}
