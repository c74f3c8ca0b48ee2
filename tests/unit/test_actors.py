"""Reading CloudTrail's record of a write call: which keys, when, by whom; and the read-time join."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from chalicelib.actors.attribution import TTL_ACTOR, actor_fields, window
from chalicelib.actors.cloudtrail import Call, Unattributable, calls_in

TABLE = "Configuration"
ALICE = {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/ops/alice", "accountId": "111122223333"}


def cloudtrail(name: str, parameters: Any, **detail: Any) -> dict[str, Any]:
    """An EventBridge event of a DynamoDB data event, in the documented CloudTrail format."""
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.dynamodb",
        "account": "111122223333",
        "time": "2024-09-11T09:02:28Z",
        "region": "eu-central-1",
        "resources": [],
        "detail": {
            "eventVersion": "1.08",
            "userIdentity": ALICE,
            "eventTime": "2024-09-11T09:02:28Z",
            "eventSource": "dynamodb.amazonaws.com",
            "eventName": name,
            "awsRegion": "eu-central-1",
            "requestParameters": parameters,
            "responseElements": None,
            "eventID": "0f4c1bd2-7c55-4b3e-9a4e-5b9f3c2a1d00",
            "readOnly": False,
            "eventType": "AwsApiCall",
            "managementEvent": False,
            "eventCategory": "Data",
            **detail,
        },
    }


def keys(event: dict[str, Any], table: str = TABLE, key_attribute: str = "key") -> list[str]:
    return [call.item_key for call in calls_in(event, table, key_attribute)]


READABLE = [
    ("PutItem", cloudtrail("PutItem", {"tableName": TABLE, "key": {"key": "CACHE_TTL_SEC"}, "item": ["key", "value"]}),
     ["CACHE_TTL_SEC"]),
    ("UpdateItem", cloudtrail("UpdateItem", {"tableName": TABLE, "key": {"key": "A"}, "updateExpression": "SET #v = :v"}),
     ["A"]),
    ("DeleteItem", cloudtrail("DeleteItem", {"tableName": TABLE, "key": {"key": "B"}}), ["B"]),
    ("table named by ARN", cloudtrail("PutItem", {"tableName": "arn:aws:dynamodb:eu-central-1:111122223333:table/Configuration",
                                                  "key": {"key": "C"}}), ["C"]),
    ("BatchWriteItem, two tables, both cases", cloudtrail("BatchWriteItem", {"requestItems": {
        TABLE: [{"putRequest": {"key": {"key": "P"}}}, {"DeleteRequest": {"Key": {"key": "D"}}}],
        "Other": [{"putRequest": {"key": {"key": "X"}}}]}}), ["D", "P"]),
    ("TransactWriteItems, field case varies, a check writes nothing", cloudtrail("TransactWriteItems", {"requestItems": [
        {"operation": "Put", "tableName": TABLE, "key": {"key": "T1"}, "items": ["key", "value"]},
        {"operation": "Update", "tableName": TABLE, "key": {"key": "T2"}, "updateExpression": "SET #v = :v"},
        {"operation": "Delete", "TableName": TABLE, "key": {"key": "T3"}},
        {"operation": "ConditionCheck", "TableName": TABLE, "Key": {"key": "CHECKED"}},
        {"operation": "Put", "TableName": "Other", "Key": {"key": "ELSEWHERE"}}]}), ["T1", "T2", "T3"]),
    ("ExecuteStatement UPDATE, key literal", cloudtrail("ExecuteStatement", {
        "statement": "UPDATE Configuration SET \"value\" = ***(Redacted) WHERE \"key\" = 'it''s'"}), ["it's"]),
    ("ExecuteStatement DELETE, key as parameter", cloudtrail("ExecuteStatement", {
        "statement": 'DELETE FROM "Configuration" WHERE "key" = ?', "parameters": [{"S": "P1"}]}), ["P1"]),
    ("BatchExecuteStatement: the INSERT's key is redacted, the UPDATE's is read", cloudtrail("BatchExecuteStatement", {
        "requestItems": [
            {"statement": "UPDATE Configuration SET v = ***(Redacted) WHERE key = 'U'"},
            {"statement": "INSERT INTO Configuration VALUE {'key' : ***(Redacted), 'v' : ***(Redacted)}"}]}), ["U"]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "event", "expected"), READABLE, ids=[c[0] for c in READABLE])
def test_write_calls_on_the_table_are_read_one_per_key(case: str, event: dict[str, Any], expected: list[str]) -> None:
    found = calls_in(event, TABLE)
    assert sorted(c.item_key for c in found) == expected
    assert {(c.arn, c.type, c.event_time) for c in found} == {(ALICE["arn"], "AssumedRole", "2024-09-11T09:02:28Z")}
    assert found[0].event_key == "2024-09-11T09:02:28Z#0f4c1bd2-7c55-4b3e-9a4e-5b9f3c2a1d00"


def test_the_documented_transaction_shape_with_a_composite_key() -> None:
    # AWS's example table keys on Artist and SongTitle: the whole key is read, as CloudTrail names it
    event = cloudtrail("TransactWriteItems", {"requestItems": [
        {"operation": "Put", "tableName": "Music", "key": {"Artist": "Band", "SongTitle": "One"}},
        {"operation": "Delete", "TableName": "Music", "key": {"SongTitle": "Two", "Artist": "Other Band"}},
        {"operation": "ConditionCheck", "TableName": "Music", "Key": {"Artist": "Third", "SongTitle": "Three"}}]})  # fmt: skip
    assert keys(event, "Music") == ['{"Artist":"Band","SongTitle":"One"}', '{"Artist":"Other Band","SongTitle":"Two"}']


@pytest.mark.parametrize(
    ("logged", "text"),
    [({"Id": 101}, "101"), ({"Id": "101"}, "101"), ({"Id": 1.5}, "1.5"), ({"pk": "t-1", "sk": 7}, '{"pk":"t-1","sk":"7"}'),
     ({"pk": {"S": "t-1"}, "sk": {"N": "7.0"}}, '{"pk":"t-1","sk":"7"}')],
)  # fmt: skip
def test_a_key_is_named_by_its_values_as_text_whatever_their_type(logged: dict[str, Any], text: str) -> None:
    assert keys(cloudtrail("PutItem", {"tableName": "T", "key": logged}), "T") == [text]


def test_a_call_is_recorded_for_the_audited_table_it_wrote_and_only_for_it() -> None:
    event = cloudtrail("BatchWriteItem", {"requestItems": {
        TABLE: [{"putRequest": {"key": {"key": "K"}}}],
        "FeatureFlags": [{"putRequest": {"key": {"pk": "K", "sk": "1"}}}],
        "Unaudited": [{"putRequest": {"key": {"key": "K"}}}]}})  # fmt: skip
    found = calls_in(event, (TABLE, "FeatureFlags"))
    assert sorted((c.table, c.item_key) for c in found) == [(TABLE, "K"), ("FeatureFlags", '{"pk":"K","sk":"1"}')]


def test_an_aws_service_caller_is_named_by_invoked_by() -> None:
    service = {"type": "AWSService", "invokedBy": "backup.amazonaws.com"}
    event = cloudtrail("PutItem", {"tableName": TABLE, "key": {"key": "K"}}, userIdentity=service)
    [call] = calls_in(event, TABLE)
    assert (call.arn, call.type) == ("backup.amazonaws.com", "AWSService")


def _without(event: dict[str, Any], *path: str) -> dict[str, Any]:
    broken = copy.deepcopy(event)
    target = broken
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return broken


PUT = cloudtrail("PutItem", {"tableName": TABLE, "key": {"key": "K"}})
UNREADABLE = [
    ("not an object", ["a list"], "not an object"),
    ("another source", {**PUT, "source": "aws.s3"}, "not a DynamoDB API call"),
    ("another detail-type", {**PUT, "detail-type": "AWS Console Sign In via CloudTrail"}, "not a DynamoDB API call"),
    ("no detail", _without(PUT, "detail"), "no detail object"),
    ("detail not an object", {**PUT, "detail": "PutItem"}, "no detail object"),
    ("another service", cloudtrail("PutItem", {}, eventSource="s3.amazonaws.com"), "eventSource is 's3.amazonaws.com'"),
    ("a read", cloudtrail("GetItem", {"tableName": TABLE, "key": {"key": "K"}}), "'GetItem' is not a write call"),
    ("no eventName", _without(PUT, "detail", "eventName"), "None is not a write call"),
    ("a failed call", cloudtrail("UpdateItem", {"tableName": TABLE, "key": {"key": "K"}},
                                  errorCode="ConditionalCheckFailedException"), "the call failed"),
    ("a cancelled transaction", cloudtrail("TransactWriteItems", {"requestItems": []},
                                            errorCode="TransactionCanceledException"), "the call failed"),
    ("no eventTime", _without(PUT, "detail", "eventTime"), "eventTime is not"),
    ("eventTime with milliseconds", cloudtrail("PutItem", {}, eventTime="2024-09-11T09:02:28.123Z"), "eventTime is not"),
    ("no eventID", _without(PUT, "detail", "eventID"), "no eventID"),
    ("no userIdentity", _without(PUT, "detail", "userIdentity"), "no userIdentity"),
    ("userIdentity without arn", cloudtrail("PutItem", {}, userIdentity={"type": "IAMUser"}), "no arn and type"),
    ("no requestParameters", _without(PUT, "detail", "requestParameters"), "no requestParameters"),
    ("another table", cloudtrail("PutItem", {"tableName": "Music", "key": {"key": "K"}}), "no key of an audited table (Configuration) in the call (tables: Music)"),
    ("no key", cloudtrail("DeleteItem", {"tableName": TABLE}), "names no key"),
    ("a boolean key", cloudtrail("PutItem", {"tableName": TABLE, "key": {"key": True}}), "the key is not a string or number"),
    ("an empty key", cloudtrail("PutItem", {"tableName": TABLE, "key": {"key": ""}}), "the key is not a string or number"),
    ("three key attributes", cloudtrail("PutItem", {"tableName": TABLE, "key": {"a": "1", "b": "2", "c": "3"}}), "one or two attributes"),
    ("a redacted key", cloudtrail("PutItem", {"tableName": TABLE, "key": {"key": "***(Redacted)"}}), "redacted the key"),
    ("transaction items not a list", cloudtrail("TransactWriteItems", {"requestItems": {"a": 1}}), "no requestItems list"),
    ("a huge transaction", cloudtrail("TransactWriteItems", {"requestItems": [
        {"operation": "Put", "tableName": TABLE, "key": {"key": f"K{n}"}} for n in range(101)]}), "101 writes in one call"),
    ("a PartiQL read", cloudtrail("ExecuteStatement", {"statement": "SELECT * FROM Configuration WHERE key = 'K'"}),
     "not a PartiQL write"),
    ("a PartiQL INSERT, key redacted", cloudtrail("ExecuteStatement", {
        "statement": "INSERT INTO Configuration VALUE {'key' : ***(Redacted)}"}), "redacts every value of a PartiQL INSERT"),
    ("a parameter the event lacks", cloudtrail("ExecuteStatement", {
        "statement": "DELETE FROM Configuration WHERE key = ?"}), "a parameter the event does not carry"),
    ("BatchWriteItem without items", cloudtrail("BatchWriteItem", {"requestItems": "all of them"}), "no requestItems"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "event", "reason"), UNREADABLE, ids=[c[0] for c in UNREADABLE])
def test_events_that_name_no_write_on_the_table_are_refused_with_a_reason(case: str, event: Any, reason: str) -> None:
    with pytest.raises(Unattributable, match=reason.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
        calls_in(event, TABLE)


def call(key: str, time: str, arn: str, event_id: str = "e") -> Call:
    return Call(key, time, event_id, arn, "AssumedRole", "PutItem", TABLE)


def entry(time: str = "2024-09-11T09:02:28.600Z", **more: Any) -> dict[str, Any]:
    return {"itemKey": "K", "modificationTime": time, **more}


@pytest.mark.parametrize(
    ("event_time", "matches"),
    [("2024-09-11T09:02:26Z", True), ("2024-09-11T09:02:28Z", True), ("2024-09-11T09:02:30Z", True),
     ("2024-09-11T09:02:25Z", False), ("2024-09-11T09:02:31Z", False)],
)  # fmt: skip
def test_a_call_matches_within_two_seconds_of_the_entrys_second(event_time: str, matches: bool) -> None:
    found = actor_fields(entry(), [call("K", event_time, "arn:alice")])
    assert found == ({"actor": {"arn": "arn:alice", "type": "AssumedRole", "source": "cloudtrail"}} if matches else {})


def test_several_principals_are_candidates_sorted_by_arn_never_a_guess() -> None:
    calls = [call("K", "2024-09-11T09:02:28Z", "arn:zed", "1"), call("K", "2024-09-11T09:02:29Z", "arn:amy", "2"),
             call("K", "2024-09-11T09:02:27Z", "arn:zed", "3"), call("OTHER", "2024-09-11T09:02:28Z", "arn:bob", "4")]  # fmt: skip
    found = actor_fields(entry(declaredActor="someone"), calls)
    assert found == {"actorCandidates": [{"arn": "arn:amy", "type": "AssumedRole", "source": "cloudtrail"},
                                         {"arn": "arn:zed", "type": "AssumedRole", "source": "cloudtrail"}]}  # fmt: skip


def test_cloudtrail_wins_over_the_declared_stamp_which_speaks_only_alone() -> None:
    stamped = entry(declaredActor="deploy-bot@example.com")
    assert actor_fields(stamped, [call("K", "2024-09-11T09:02:28Z", "arn:alice")])["actor"]["source"] == "cloudtrail"
    assert actor_fields(stamped, []) == {
        "actor": {"arn": "deploy-bot@example.com", "type": "Declared", "source": "declared"}
    }


def test_a_ttl_deletion_is_the_ttl_process() -> None:
    assert actor_fields(entry(expired=True), [call("K", "2024-09-11T09:02:28Z", "arn:alice")]) == {"actor": TTL_ACTOR}


def test_the_window_of_a_page_spans_its_entries_two_seconds_either_side() -> None:
    assert window(["2024-09-11T09:02:28.999Z", "2024-09-11T09:00:00.000Z"]) == (
        "2024-09-11T08:59:58Z",
        "2024-09-11T09:02:30Z",
    )
