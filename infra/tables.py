"""The two tables, defined once: the local stack, the tests and provisioning all create them from here.

The CloudFormation merge template and the Terraform file spell the same definitions in their own
syntax; a test holds them equal to these.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from chalicelib.audit.records import KEY_ATTRIBUTE
from chalicelib.audit.repository import HISTORY_INDEX, TIME_INDEX, TIME_INDEX_FIELDS, TIME_ORDER, TIME_SHARD

AUDITED_VIEW_TYPE = "NEW_AND_OLD_IMAGES"  # an entry needs the item before and after the change


def configuration_table(name: str) -> dict[str, Any]:
    """CreateTable arguments for the audited table: hash key ``key``, stream with both images."""
    return {
        "TableName": name,
        "AttributeDefinitions": [{"AttributeName": KEY_ATTRIBUTE, "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": KEY_ATTRIBUTE, "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": AUDITED_VIEW_TYPE},
    }


def keyed_table(name: str, keys: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """CreateTable arguments for a table of any key schema: (name, S|N|B) of the hash key, then
    of the range key if any, with a stream carrying both images (a table a team already has)."""
    return {
        "TableName": name,
        "AttributeDefinitions": [{"AttributeName": key, "AttributeType": kind} for key, kind in keys],
        "KeySchema": [
            {"AttributeName": key, "KeyType": role}
            for (key, _), role in zip(keys, ("HASH", "RANGE")[: len(keys)], strict=True)
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": AUDITED_VIEW_TYPE},
    }


def audit_table(name: str) -> dict[str, Any]:
    """CreateTable arguments for the Audit table, its "history of one key" index and its time
    index ("changes across keys": entries spread over TIME_SHARDS partition values)."""
    return {
        "TableName": name,
        "AttributeDefinitions": [
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "itemKey", "AttributeType": "S"},
            {"AttributeName": "modificationTime", "AttributeType": "S"},
            {"AttributeName": TIME_SHARD, "AttributeType": "S"},
            {"AttributeName": TIME_ORDER, "AttributeType": "S"},
        ],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
        "GlobalSecondaryIndexes": [
            {
                "IndexName": HISTORY_INDEX,
                "KeySchema": [
                    {"AttributeName": "itemKey", "KeyType": "HASH"},
                    {"AttributeName": "modificationTime", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": TIME_INDEX,
                "KeySchema": [
                    {"AttributeName": TIME_SHARD, "KeyType": "HASH"},
                    {"AttributeName": TIME_ORDER, "KeyType": "RANGE"},
                ],
                # one write unit an entry whatever its size; a window query fetches the entries it names
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(TIME_INDEX_FIELDS)},
            },
        ],
    }


def actors_table(name: str) -> dict[str, Any]:
    """CreateTable arguments for AuditActors: who called which write, one item per (key, call)."""
    return {
        "TableName": name,
        "AttributeDefinitions": [
            {"AttributeName": "itemKey", "AttributeType": "S"},
            {"AttributeName": "eventKey", "AttributeType": "S"},
        ],
        "KeySchema": [
            {"AttributeName": "itemKey", "KeyType": "HASH"},
            {"AttributeName": "eventKey", "KeyType": "RANGE"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }


class UnusableTable(Exception):
    """An existing table provisioning must not call ready: its message names the table and the fix."""


KEY_TYPES = ("S", "N", "B")  # all DynamoDB allows a key: the producer audits every one of them


def key_schema_problem(table: dict[str, Any]) -> str | None:
    """Why a described table's key cannot be audited, or None: a hash key of type S, N or B, and
    optionally a range key of S, N or B."""
    # The one place that knows which key schemas the producer can audit (SPEC.md, "Audited tables").
    types = {a["AttributeName"]: a["AttributeType"] for a in table.get("AttributeDefinitions", [])}
    keys = [(k["AttributeName"], k["KeyType"]) for k in table.get("KeySchema", [])]
    if [kind for _, kind in keys] in (["HASH"], ["HASH", "RANGE"]) and all(types.get(name) in KEY_TYPES
                                                                          for name, _ in keys):  # fmt: skip
        return None
    found = ", ".join(f"{name} ({types.get(name, '?')}, {kind.lower()})" for name, kind in keys) or "none"
    return (
        f"its key is {found}, and only a hash key of type S, N or B, with or without a range key of S, N or B, "
        "can be audited: take it out of AUDITED_TABLES"
    )


def stream_problem(table: dict[str, Any]) -> str | None:
    """Why a described table's stream cannot feed the producer, or None: it must be on, with both images."""
    view = _stream_view(table)
    if view is None:
        return f"it has no stream: run provisioning again with --enable-stream to turn one on with {AUDITED_VIEW_TYPE}"
    if view != AUDITED_VIEW_TYPE:
        # DynamoDB cannot change a stream's view type in place, and turning the stream off ends it
        # for every other reader of it, so that step is the table owner's call, not provisioning's
        return (
            f"its stream carries {view}, not {AUDITED_VIEW_TYPE}, and a view type cannot be changed in place: "
            f"turn the stream off (aws dynamodb update-table --table-name {table['TableName']} "
            "--stream-specification StreamEnabled=false), then run provisioning again with --enable-stream"
        )
    return None


def _stream_view(table: dict[str, Any]) -> str | None:
    """The view type of a described table's stream, None where it has none."""
    # LatestStreamArn outlives a disabled stream: only StreamSpecification says a stream is on
    stream = table.get("StreamSpecification") or {}
    return str(stream.get("StreamViewType")) if stream.get("StreamEnabled") else None


def _wait(client: Any, name: str) -> dict[str, Any]:
    """A table's description once it is ACTIVE."""
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return dict(client.describe_table(TableName=name)["Table"])


def add_missing_indexes(client: Any, trail: str) -> list[str]:
    """Create the indexes a trail made by an earlier version lacks (the time index); their names.

    DynamoDB builds a new index from the items that carry its keys: entries written before it
    have no ``timeShard`` until ``config-audit backfill`` gives them one.
    """
    wanted = audit_table(trail)
    have = {index["IndexName"] for index in _wait(client, trail).get("GlobalSecondaryIndexes", [])}
    added = []
    for index in wanted["GlobalSecondaryIndexes"]:
        if index["IndexName"] in have:
            continue
        keys = {key["AttributeName"] for key in index["KeySchema"]}
        client.update_table(
            TableName=trail,
            AttributeDefinitions=[a for a in wanted["AttributeDefinitions"] if a["AttributeName"] in keys],
            GlobalSecondaryIndexUpdates=[{"Create": index}],
        )
        _wait(client, trail)  # one index is created at a time
        added.append(index["IndexName"])
    return added


def prepare_tables(
    client: Any, pairs: list[tuple[str, str]], actors_name: str | None = None, *, enable_stream: bool = False
) -> list[str]:
    """Create the audited tables' trails (and the first table, and AuditActors) where missing, idempotent;
    return each audited table's stream ARN, in order.

    Every audited table that exists is checked before anything is created or changed, and one that
    cannot be audited is refused (UnusableTable); so is a missing one but the first: provisioning
    never creates someone's configuration table for them. ``enable_stream`` turns on
    NEW_AND_OLD_IMAGES where an audited table has no stream.
    """
    existing = set()
    for page in client.get_paginator("list_tables").paginate():
        existing.update(page["TableNames"])
    missing = [source for source, _ in pairs[1:] if source not in existing]
    if missing:
        noun, they, them = ("table", "it does", "it") if len(missing) == 1 else ("tables", "they do", "them")
        raise UnusableTable(
            f"{noun} {', '.join(repr(source) for source in missing)} cannot be audited: {they} not exist, and "
            f"provisioning creates no table but the first of AUDITED_TABLES: create {them} with a "
            f"{AUDITED_VIEW_TYPE} stream, or take {them} out of AUDITED_TABLES"
        )
    streamless = []
    for source, _ in pairs:
        if source not in existing:
            continue
        table = _wait(client, source)
        problem = key_schema_problem(table)
        if problem is None and enable_stream and _stream_view(table) is None:
            streamless.append(source)
            continue
        problem = problem or stream_problem(table)
        if problem:
            raise UnusableTable(f"table {source!r} cannot be audited: {problem}")
    for source in streamless:
        client.update_table(
            TableName=source, StreamSpecification={"StreamEnabled": True, "StreamViewType": AUDITED_VIEW_TYPE}
        )
        _wait(client, source)
    definitions = [configuration_table(pairs[0][0]), *(audit_table(trail) for _, trail in pairs)]
    if actors_name:
        definitions.append(actors_table(actors_name))
    for definition in definitions:
        if definition["TableName"] not in existing:
            client.create_table(**definition)
    for definition in definitions:
        _wait(client, definition["TableName"])
    for _, trail in pairs:
        add_missing_indexes(client, trail)
    return [str(_wait(client, source)["LatestStreamArn"]) for source, _ in pairs]


def create_tables(
    client: Any,
    configuration_name: str,
    audit_name: str,
    actors_name: str | None = None,
    *,
    enable_stream: bool = False,
) -> str:
    """Create the tables of one audited table where missing (idempotent); return the Configuration stream ARN.

    An existing Configuration table is checked first and nothing is created if it cannot be audited
    (UnusableTable); ``enable_stream`` turns on NEW_AND_OLD_IMAGES where it has no stream.
    """
    [arn] = prepare_tables(client, [(configuration_name, audit_name)], actors_name, enable_stream=enable_stream)
    return arn


def protect_tables(client: Any, names: list[str], append_only: dict[str, dict[str, Any]]) -> None:
    """Deletion protection and point-in-time recovery on every table; ``append_only`` maps a
    table's name to the resource-based policy that keeps its items from being changed."""
    for name in names:
        if not client.describe_table(TableName=name)["Table"].get("DeletionProtectionEnabled"):
            client.update_table(TableName=name, DeletionProtectionEnabled=True)
        client.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    for name, policy in append_only.items():
        arn = client.describe_table(TableName=name)["Table"]["TableArn"]
        client.put_resource_policy(ResourceArn=arn, Policy=json.dumps(policy))
