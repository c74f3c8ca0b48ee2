"""Replaying the Audit history in sequence order rebuilds the Configuration table exactly
(hypothesis: random puts, updates and deletes of every DynamoDB type, through moto's real stream)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer
from chalice.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.audit.repository import DynamoDBAuditRepository
from config_audit.replay import replay, setting_at
from tests.conftest import AUDIT, CONFIGURATION, ROOT, fresh_stack

_deserializer = TypeDeserializer()

numbers = st.one_of(
    st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1).map(Decimal),
    st.decimals(min_value=-(10**6), max_value=10**6, places=6, allow_nan=False, allow_infinity=False).map(
        lambda d: d.normalize() if d != 0 else Decimal(0)
    ),
)
scalars = st.one_of(
    st.text(max_size=8),
    numbers,
    st.binary(max_size=6).map(Binary),
    st.booleans(),
    st.none(),
    st.sets(st.text(max_size=4), min_size=1, max_size=3),
    st.sets(st.integers(-1000, 1000).map(Decimal), min_size=1, max_size=3),
    st.sets(st.binary(min_size=1, max_size=3), min_size=1, max_size=3).map(lambda s: {Binary(b) for b in s}),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(min_size=1, max_size=4), inner, max_size=3),
    max_leaves=6,
)
keys = st.sampled_from(["CACHE_TTL_SEC", "FEATURE_X", "LIMIT"])
names = st.sampled_from(["value", "description", "owner"])
operations = st.lists(
    st.one_of(
        st.tuples(st.just("put"), keys, st.dictionaries(names, values, min_size=1, max_size=3)),
        st.tuples(st.just("set"), keys, names, values),
        st.tuples(st.just("remove"), keys, names),
        st.tuples(st.just("delete"), keys),
    ),
    min_size=1,
    max_size=12,
)


def plain(items: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {key: {n: _deserializer.deserialize(v) for n, v in item.items()} for key, item in items.items()}


def apply(table: Any, operation: tuple[Any, ...]) -> None:
    kind, key = operation[0], operation[1]
    if kind == "put":
        table.put_item(Item={"key": key, **operation[2]})
    elif kind == "set":
        table.update_item(
            Key={"key": key},
            UpdateExpression="SET #n = :v",
            ExpressionAttributeNames={"#n": operation[2]},
            ExpressionAttributeValues={":v": operation[3]},
        )
    elif kind == "remove":
        table.update_item(Key={"key": key}, UpdateExpression="REMOVE #n", ExpressionAttributeNames={"#n": operation[2]})
    else:
        table.delete_item(Key={"key": key})


@pytest.fixture(scope="module")
def client() -> Client:
    from app import app

    return Client(app, stage_name="dev", project_dir=str(ROOT))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations)
def test_replaying_the_history_rebuilds_the_table(client: Client, ops: list[tuple[Any, ...]]) -> None:
    with fresh_stack() as stack:
        for operation in ops:
            apply(stack.configuration, operation)
        assert client.lambda_.invoke("audit_producer", stack.new_event()).payload == {"batchItemFailures": []}
        history = stack.dynamodb.scan(TableName=AUDIT)["Items"]
        truth = {item["key"]["S"]: item for item in stack.dynamodb.scan(TableName=CONFIGURATION)["Items"]}
        assert plain(replay(history)) == plain(truth)


def test_setting_at_answers_what_a_setting_was_at_a_time(client: Client) -> None:
    with fresh_stack() as stack:
        stack.put("CACHE_TTL_SEC", value=3600)
        stack.put("CACHE_TTL_SEC", value=1800)
        stack.delete("CACHE_TTL_SEC")
        records = stack.new_records()
        for minute, record in enumerate(records):  # 09:00, 09:01, 09:02 on 2024-09-11
            record["dynamodb"]["ApproximateCreationDateTime"] = 1726045200.0 + 60 * minute
        client.lambda_.invoke("audit_producer", {"Records": records})
        repository = DynamoDBAuditRepository(stack.dynamodb, AUDIT)
        assert setting_at(repository, "CACHE_TTL_SEC", "2024-09-11T08:59:59.999Z") is None
        assert setting_at(repository, "CACHE_TTL_SEC", "2024-09-11T09:00:30.000Z") == {
            "key": {"S": "CACHE_TTL_SEC"},
            "value": {"N": "3600"},
        }
        assert setting_at(repository, "CACHE_TTL_SEC", "2024-09-11T09:01:00.000Z")["value"] == {"N": "1800"}  # type: ignore[index]
        assert setting_at(repository, "CACHE_TTL_SEC", "2024-09-11T09:05:00.000Z") is None
