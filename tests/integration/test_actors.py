"""Who made each change, end to end: actor_recorder keeps CloudTrail's calls, the history joins them."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from chalice.test import Client

from tests.conftest import ACTORS, Stack
from tests.unit.test_actors import cloudtrail

pytestmark = pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")
ALICE = "arn:aws:sts::111122223333:assumed-role/ops/alice"
BOB = "arn:aws:iam::111122223333:user/bob"


def recorded(stack: Stack) -> list[dict[str, Any]]:
    return list(stack.dynamodb.scan(TableName=ACTORS)["Items"])


def write_call(key: str, event_time: str, arn: str, event_id: str, name: str = "PutItem") -> dict[str, Any]:
    event = cloudtrail(name, {"tableName": "Configuration", "key": {"key": key}})
    event["detail"].update(eventTime=event_time, eventID=event_id, userIdentity={"type": "IAMUser", "arn": arn})
    return event


def history(client: Client, key: str) -> list[dict[str, Any]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        response = client.http.get(f"/audit/{key}")
    assert response.status_code == 200, response.body
    return list(json.loads(response.body)["entries"])


def audit(stack: Stack, client: Client) -> list[str]:
    """Run the producer on what the stream holds; the seconds (eventTime form) of the new entries."""
    assert client.lambda_.invoke("audit_producer", stack.new_event()).payload == {"batchItemFailures": []}
    return sorted({e["modificationTime"][:19] + "Z" for e in stack.audit_entries()})


def test_each_call_is_recorded_once_however_often_eventbridge_delivers_it(stack: Stack, client: Client) -> None:
    event = cloudtrail("TransactWriteItems", {"requestItems": [
        {"operation": "Put", "tableName": "Configuration", "key": {"key": "A"}},
        {"operation": "Delete", "TableName": "Configuration", "Key": {"key": "B"}}]})  # fmt: skip
    for _ in range(3):
        assert client.lambda_.invoke("actor_recorder", event).payload == {"recorded": 2}
    items = recorded(stack)
    assert sorted(i["itemKey"]["S"] for i in items) == ["Configuration#A", "Configuration#B"]  # <table>#<key>
    assert {i["eventKey"]["S"] for i in items} == {"2024-09-11T09:02:28Z#0f4c1bd2-7c55-4b3e-9a4e-5b9f3c2a1d00"}


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (write_call("K", "2024-09-11T09:02:28Z", ALICE, "f1") | {"detail": {
            **write_call("K", "2024-09-11T09:02:28Z", ALICE, "f1")["detail"], "errorCode": "ConditionalCheckFailedException"}},
         "the call failed"),
        (cloudtrail("GetItem", {"tableName": "Configuration", "key": {"key": "K"}}), "'GetItem' is not a write call"),
        (write_call("K", "2024-09-11T09:02:28Z", ALICE, "f2") | {"detail": {
            **write_call("K", "2024-09-11T09:02:28Z", ALICE, "f2")["detail"], "requestParameters": {"tableName": "Music",
                                                                                             "key": {"key": "K"}}}},
         "no key of an audited table (Configuration)"),
    ],
)  # fmt: skip
def test_an_event_that_names_no_write_is_logged_with_the_reason_and_never_fails_the_function(
    stack: Stack, client: Client, logs: Callable[[], list[dict[str, Any]]], event: Any, reason: str
) -> None:
    assert client.lambda_.invoke("actor_recorder", event).payload == {"recorded": 0}
    assert recorded(stack) == []
    [line] = [line for line in logs() if line["message"].startswith("CloudTrail event skipped")]
    assert reason in line["reason"]


def test_history_shows_the_cloudtrail_caller_the_declared_stamp_or_both_candidates(
    stack: Stack, client: Client
) -> None:
    # GIVEN a change CloudTrail attributes to alice, though the item says a bot wrote it
    stack.put("K", value=1, modifiedBy="deploy-bot")
    [second] = audit(stack, client)
    client.lambda_.invoke("actor_recorder", write_call("K", second, ALICE, "c1"))
    [entry] = history(client, "K")
    assert entry["actor"] == {"arn": ALICE, "type": "IAMUser", "source": "cloudtrail"}
    assert "declaredActor" not in entry and "actorCandidates" not in entry
    # AND a call elsewhere on the timeline, or on another key, changes nothing
    client.lambda_.invoke("actor_recorder", write_call("K", "2020-01-01T00:00:00Z", BOB, "c2"))
    client.lambda_.invoke("actor_recorder", write_call("OTHER", second, BOB, "c3"))
    assert history(client, "K")[0]["actor"]["arn"] == ALICE
    # WHEN a second principal wrote the key within the same seconds
    client.lambda_.invoke("actor_recorder", write_call("K", second, BOB, "c4", name="UpdateItem"))
    # THEN both are candidates, sorted, and no actor is guessed
    [entry] = history(client, "K")
    assert "actor" not in entry
    assert [c["arn"] for c in entry["actorCandidates"]] == sorted([ALICE, BOB])


def test_every_entry_of_a_page_is_joined_however_far_apart_their_times(stack: Stack, client: Client) -> None:
    # GIVEN three changes of one key an hour apart, each made by another caller
    for value in range(3):
        stack.put("K", value=value)
    event = stack.new_event()
    callers = [ALICE, BOB, "arn:aws:iam::111122223333:user/carol"]
    for hour, record in enumerate(event["Records"]):
        record["dynamodb"]["ApproximateCreationDateTime"] = 1726045348.0 + 3600 * hour
    assert client.lambda_.invoke("audit_producer", event).payload == {"batchItemFailures": []}
    for hour, caller in enumerate(callers):
        client.lambda_.invoke(
            "actor_recorder", write_call("K", f"2024-09-11T{9 + hour:02d}:02:28Z", caller, f"h{hour}")
        )
    # WHEN the history is read in one page THEN each entry names its own caller, the oldest included
    assert [entry["actor"]["arn"] for entry in history(client, "K")] == list(reversed(callers))


def test_without_cloudtrail_the_stamp_speaks_and_a_restamp_alone_is_no_entry(stack: Stack, client: Client) -> None:
    stack.put("K", value=1, modifiedBy="deploy-bot")
    stack.put("K", value=1, modifiedBy="someone-else")  # only the stamp changed
    audit(stack, client)
    [entry] = history(client, "K")
    assert entry["actor"] == {"arn": "deploy-bot", "type": "Declared", "source": "declared"}


def test_a_ttl_deletion_is_attributed_to_dynamodb_and_a_deletion_never_to_the_stamp(
    stack: Stack, client: Client
) -> None:
    stack.put("TTL", value=1, modifiedBy="deploy-bot")
    stack.put("GONE", value=1, modifiedBy="deploy-bot")
    stack.delete("TTL")
    stack.delete("GONE")
    event = stack.new_event()
    for record in event["Records"]:
        if record["eventName"] == "REMOVE" and record["dynamodb"]["Keys"]["key"]["S"] == "TTL":
            record["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    assert client.lambda_.invoke("audit_producer", event).payload == {"batchItemFailures": []}
    expired, _created = history(client, "TTL")
    assert expired["expired"] is True
    assert expired["actor"] == {"arn": "dynamodb.amazonaws.com", "type": "Service", "source": "ttl"}
    deleted, created = history(client, "GONE")
    assert "actor" not in deleted and created["actor"]["source"] == "declared"


def test_the_join_reads_the_index_and_one_query_of_actors_never_a_scan(stack: Stack, client: Client) -> None:
    from chalicelib import wiring

    for value in range(5):
        stack.put("K", value=value)
    audit(stack, client)
    calls: list[tuple[str, str]] = []
    wiring.client("dynamodb").meta.events.register(
        "provide-client-params.dynamodb.*",
        lambda model, params, **_: calls.append((model.name, params.get("TableName", ""))),
    )
    assert len(history(client, "K")) == 5
    assert ("Query", ACTORS) in calls and calls.count(("Query", ACTORS)) == 1
    assert not any(name == "Scan" for name, _ in calls)


def test_the_same_call_twice_in_one_recording_is_kept_once(stack: Stack) -> None:
    # DynamoDB refuses a BatchWriteItem that names one item twice: the repository sends it once
    from chalicelib.actors.cloudtrail import Call
    from chalicelib.actors.repository import DynamoDBActorRepository

    repository = DynamoDBActorRepository(stack.dynamodb, ACTORS)
    call = Call("K", "2024-09-11T09:02:28Z", "e1", ALICE, "IAMUser", "PutItem", "Configuration")
    assert repository.record([call, call]) == []
    assert len(recorded(stack)) == 1
    assert repository.calls("Configuration", "K", "2024-09-11T09:02:28Z", "2024-09-11T09:02:28Z") == [call]
