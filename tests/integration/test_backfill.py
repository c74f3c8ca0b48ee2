"""An Audit table from before the time index: provisioning adds the index, backfill fills it, twice is harmless."""

from __future__ import annotations

from typing import Any

from chalice.test import Client

from chalicelib.audit.changes import ChangesQuery, ChangesReader
from chalicelib.audit.repository import TIME_ORDER, TIME_SHARD
from chalicelib.settings import Settings
from config_audit import cli
from config_audit.stage import stage_environment
from infra.tables import add_missing_indexes
from tests.conftest import AUDIT, ROOT, Stack

WINDOW = ChangesQuery("2000-01-01T00:00:00.000Z", "9999-01-01T00:00:00.000Z")


def run(*argv: str) -> str:
    answer = cli.run(cli.parser().parse_args(["--stage", "dev", *argv]))
    assert isinstance(answer, str)
    return answer


def changes(dynamodb: Any) -> list[str]:
    reader = ChangesReader(dynamodb, Settings.from_environ(stage_environment("dev", ROOT)), None)
    return [entry["itemKey"]["S"] for entry in reader.entries(WINDOW)]


def test_entries_written_before_the_index_are_put_into_it_once(stack: Stack, client: Client) -> None:
    # GIVEN entries an earlier version wrote: no timeShard, so not in the time index
    for n in range(3):
        stack.put(f"KEY_{n}", value=n)
    assert client.lambda_.invoke("audit_producer", stack.new_event()).payload == {"batchItemFailures": []}
    before = stack.dynamodb.scan(TableName=AUDIT)["Items"]
    for item in before:
        del item[TIME_SHARD], item[TIME_ORDER]
        stack.dynamodb.put_item(TableName=AUDIT, Item=item)
    assert changes(stack.dynamodb) == []
    # WHEN provisioning runs again (the index is there already: nothing to add) and backfill runs
    assert add_missing_indexes(stack.dynamodb, AUDIT) == []
    assert run("backfill") == f"Configuration: 3 entries of {AUDIT!r} put into the time index"
    # THEN the changes are found, and the entries are as they were but for their index attribute
    assert sorted(changes(stack.dynamodb)) == ["KEY_0", "KEY_1", "KEY_2"]
    after = {item["id"]["S"]: item for item in stack.dynamodb.scan(TableName=AUDIT)["Items"]}
    assert {i["id"]["S"]: i for i in before} == {
        k: {n: v for n, v in i.items() if n not in (TIME_SHARD, TIME_ORDER)} for k, i in after.items()
    }
    # AND a second run does nothing
    assert run("backfill") == f"Configuration: 0 entries of {AUDIT!r} put into the time index"
    assert run("backfill", "--table", "Configuration").startswith("Configuration: 0 entries")


def test_provisioning_adds_the_time_index_to_a_trail_made_before_it(dynamodb: Any) -> None:
    from infra.tables import audit_table

    older = audit_table("OldAudit")
    older["GlobalSecondaryIndexes"] = older["GlobalSecondaryIndexes"][:1]  # the history index only
    older["AttributeDefinitions"] = older["AttributeDefinitions"][:3]  # id, itemKey, modificationTime
    dynamodb.create_table(**older)
    assert add_missing_indexes(dynamodb, "OldAudit") == ["timeShard-timeOrder-index"]
    indexes = dynamodb.describe_table(TableName="OldAudit")["Table"]["GlobalSecondaryIndexes"]
    assert sorted(index["IndexName"] for index in indexes) == [
        "itemKey-modificationTime-index",
        "timeShard-timeOrder-index",
    ]
    assert add_missing_indexes(dynamodb, "OldAudit") == []  # idempotent
