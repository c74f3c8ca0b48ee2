"""The two tables, defined once: the local stack, the tests and provisioning all create them from here.

The CloudFormation merge template and the Terraform file spell the same definitions in their own
syntax; a test holds them equal to these.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.audit_repository import HISTORY_INDEX


def configuration_table(name: str) -> dict[str, Any]:
    """CreateTable arguments for the audited table: hash key ``key``, stream with both images."""
    return {
        "TableName": name,
        "AttributeDefinitions": [{"AttributeName": "key", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "key", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    }


def audit_table(name: str) -> dict[str, Any]:
    """CreateTable arguments for the Audit table and its "history of one key" index."""
    return {
        "TableName": name,
        "AttributeDefinitions": [
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "itemKey", "AttributeType": "S"},
            {"AttributeName": "modificationTime", "AttributeType": "S"},
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
            }
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


def create_tables(client: Any, configuration_name: str, audit_name: str, actors_name: str | None = None) -> str:
    """Create the tables where missing (idempotent); return the Configuration stream ARN."""
    existing = set()
    for page in client.get_paginator("list_tables").paginate():
        existing.update(page["TableNames"])
    definitions = [configuration_table(configuration_name), audit_table(audit_name)]
    if actors_name:
        definitions.append(actors_table(actors_name))
    for definition in definitions:
        if definition["TableName"] not in existing:
            client.create_table(**definition)
        client.get_waiter("table_exists").wait(
            TableName=definition["TableName"], WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
    description = client.describe_table(TableName=configuration_name)["Table"]
    arn = description.get("LatestStreamArn")
    if not arn:
        raise RuntimeError(f"table {configuration_name!r} exists but has no stream; enable NEW_AND_OLD_IMAGES")
    return str(arn)


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
