"""Property: for any key schema (an S, N or B hash key, with or without an S, N or B range key) and
any writes, replaying a table's trail rebuilds the table exactly (hypothesis, against moto)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import Binary, TypeSerializer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.audit.producer import AuditProducer
from chalicelib.audit.repository import DynamoDBAuditRepository
from config_audit.replay import replay
from infra.tables import audit_table
from local.stream import read_all
from tests.conftest import REGION, fresh_stack

KEY_VALUES = {
    "S": st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=8),
    "N": st.one_of(st.integers(-1000, 1000), st.decimals(-100, 100, places=2)).map(Decimal),
    "B": st.binary(min_size=1, max_size=4).map(Binary),
}
VALUES = st.one_of(st.integers(-5, 5).map(Decimal), st.text(max_size=5), st.booleans(), st.none(),
                   st.lists(st.integers(0, 3).map(Decimal), max_size=3))  # fmt: skip


@st.composite
def workloads(draw: Any) -> tuple[list[tuple[str, str]], list[tuple[str, Any, dict[str, Any]]]]:
    """A key schema [(name, type)], and writes (put | update | delete, key, attributes) over a few keys."""
    schema = [("h", draw(st.sampled_from("SNB")))]
    if draw(st.booleans()):
        schema.append(("r", draw(st.sampled_from("SNB"))))
    keys = draw(st.lists(st.tuples(*(KEY_VALUES[kind] for _, kind in schema)), min_size=1, max_size=3, unique=True))
    writes = []
    for _ in range(draw(st.integers(1, 12))):
        key = dict(zip([name for name, _ in schema], draw(st.sampled_from(keys)), strict=True))
        kind = draw(st.sampled_from(["put", "put", "update", "delete"]))
        writes.append((kind, key, draw(st.dictionaries(st.sampled_from(["a", "b", "c"]), VALUES, max_size=3))))
    return schema, writes


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workload=workloads())
def test_replaying_the_trail_of_any_key_schema_rebuilds_the_table(
    workload: tuple[list[tuple[str, str]], list[tuple[str, Any, dict[str, Any]]]],
) -> None:
    schema, writes = workload
    with fresh_stack() as stack:
        # GIVEN a table of that key schema, with its stream, and its trail
        dynamodb = stack.dynamodb
        dynamodb.create_table(
            TableName="Any", BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": name, "AttributeType": kind} for name, kind in schema],
            KeySchema=[{"AttributeName": name, "KeyType": role} for (name, _), role in zip(schema, ["HASH", "RANGE"][: len(schema)], strict=True)],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )  # fmt: skip
        dynamodb.create_table(**audit_table("AnyAudit"))
        table = boto3.resource("dynamodb", region_name=REGION).Table("Any")
        # WHEN the writes happen, and the function audits the stream
        for kind, key, attributes in writes:
            if kind == "put":
                table.put_item(Item={**key, **attributes})
            elif kind == "delete":
                table.delete_item(Key=key)
            elif attributes:
                names = {f"#n{i}": name for i, name in enumerate(attributes)}
                values = {f":v{i}": value for i, value in enumerate(attributes.values())}
                table.update_item(Key=key, UpdateExpression="SET " + ", ".join(f"#n{i} = :v{i}" for i in range(len(names))),
                                  ExpressionAttributeNames=names, ExpressionAttributeValues=values)  # fmt: skip
        arn = dynamodb.describe_table(TableName="Any")["Table"]["LatestStreamArn"]
        trail = DynamoDBAuditRepository(dynamodb, "AnyAudit")
        records = list(read_all(stack.streams, arn))
        assert AuditProducer(trail).handle({"Records": records}) == {"batchItemFailures": []}
        # THEN replaying the trail gives the table, item for item, value for value
        entries = [
            item for page in dynamodb.get_paginator("scan").paginate(TableName="AnyAudit") for item in page["Items"]
        ]
        rebuilt = sorted(replay(entries).values(), key=repr)
        held = sorted(
            (item for page in dynamodb.get_paginator("scan").paginate(TableName="Any") for item in page["Items"]),
            key=repr,
        )
        assert _canonical(rebuilt) == _canonical(held)


def _canonical(items: list[dict[str, Any]]) -> list[str]:
    """Items compared as DynamoDB values: numbers by value, sets in any order."""
    from boto3.dynamodb.types import TypeDeserializer

    deserialize, serialize = TypeDeserializer().deserialize, TypeSerializer().serialize
    return sorted(
        repr(sorted((name, repr(serialize(deserialize(value)))) for name, value in item.items())) for item in items
    )
