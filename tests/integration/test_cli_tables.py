"""config-audit --table: every key shape round-trips through put, history, at, diff, rollback and
delete, each table beside the seed with its own trail (#18, moto)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice.test import Client

from config_audit import cli
from config_audit.errors import NotDone
from config_audit.rollback import plan_rollback, write_back
from config_audit.trail import Trail
from infra.tables import audit_table
from local.stack import read_audit
from local.stream import read_all
from tests.conftest import AUDIT, CONFIGURATION, REGION, STAGE, Stack, project_with

FLAGS, ORDERS, BLOBS = "FeatureFlags", "Orders", "Blobs"
TRAILS = {CONFIGURATION: AUDIT, FLAGS: "FeatureFlagsAudit", ORDERS: "OrdersAudit", BLOBS: "BlobsAudit"}
KEY_SCHEMAS: dict[str, list[tuple[str, str, str]]] = {  # name, type, role
    FLAGS: [("pk", "S", "HASH"), ("sk", "N", "RANGE")],
    ORDERS: [("Id", "N", "HASH")],
    BLOBS: [("blob", "B", "HASH")],
}


@dataclass
class Tables:
    """The seed table and three tables of other key shapes, audited side by side by one project."""

    stack: Stack
    project: str
    streams: dict[str, str]  # table -> stream ARN
    audit: Callable[[], None]

    def trail(self, table: str) -> list[dict[str, Any]]:
        return read_audit(self.stack.dynamodb, TRAILS[table])

    def item(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        found: dict[str, Any] | None = (
            boto3.resource("dynamodb", region_name=REGION).Table(table).get_item(Key=key).get("Item")
        )
        return found


@pytest.fixture
def tables(stack: Stack, tmp_path: Path) -> Tables:
    dynamodb = stack.dynamodb
    streams = {CONFIGURATION: stack.stream_arn}
    for table, schema in KEY_SCHEMAS.items():
        dynamodb.create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": name, "AttributeType": type_} for name, type_, _ in schema],
            KeySchema=[{"AttributeName": name, "KeyType": role} for name, _, role in schema],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        dynamodb.create_table(**audit_table(TRAILS[table]))
        streams[table] = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    pairs = ",".join(f"{source}={trail}" for source, trail in TRAILS.items())
    project = project_with(tmp_path, AUDITED_TABLES=pairs)
    from app import app

    function = Client(app, stage_name="dev", project_dir=project)
    seen: set[str] = set()

    def audit() -> None:
        """Lambda's part: every new record of the four streams, in one batch, through audit_producer."""
        records = [
            keys_as_lambda_sends_them(r)
            for arn in streams.values()
            for r in read_all(stack.streams, arn)
            if r["eventID"] not in seen
        ]
        seen.update(record["eventID"] for record in records)
        assert function.lambda_.invoke("audit_producer", {"Records": records}).payload == {"batchItemFailures": []}

    return Tables(stack, project, streams, audit)


def keys_as_lambda_sends_them(record: dict[str, Any]) -> dict[str, Any]:
    """moto's GetRecords base64-encodes a binary key twice in ``Keys`` (not in the images), which the
    function rightly calls poison; Lambda delivers the key attributes as the images hold them."""
    body = record["dynamodb"]
    image = body.get("NewImage") or body.get("OldImage") or {}
    keys = {name: image.get(name, value) for name, value in body["Keys"].items()}
    return {**record, "dynamodb": {**body, "Keys": keys}}


def run(tables: Tables, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """config-audit's stdout for a command line that succeeds (exit status 0, nothing on stderr)."""
    capsys.readouterr()
    assert cli.main(["--project-dir", tables.project, *argv]) == 0, capsys.readouterr().err
    out, err = capsys.readouterr()
    assert err == ""
    return out


def fails(tables: Tables, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """config-audit's one line on stderr for a command line that fails (exit status 1, nothing on stdout)."""
    capsys.readouterr()
    assert cli.main(["--project-dir", tables.project, *argv]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    [line] = err.splitlines()
    return line


@dataclass(frozen=True)
class Shape:
    table: str
    key: str  # KEY as the operator types it: the key as text
    typed: dict[str, Any]  # the item's key, as boto3's resource reads it
    plain: dict[str, Any]  # the key attributes as `at` shows them (JSON)


SHAPES = {
    "seed": Shape(CONFIGURATION, "CACHE_TTL_SEC", {"key": "CACHE_TTL_SEC"}, {"key": "CACHE_TTL_SEC"}),
    "pk/sk (S/N)": Shape(FLAGS, '{"pk":"tenant-1","sk":7}', {"pk": "tenant-1", "sk": 7}, {"pk": "tenant-1", "sk": 7}),
    "numeric": Shape(ORDERS, "101", {"Id": 101}, {"Id": 101}),
    "binary": Shape(BLOBS, "AAE=", {"blob": b"\x00\x01"}, {"blob": "AAE="}),
}


def as_json(plain: dict[str, Any]) -> str:
    """A plain item as `at` prints it: JSON, keys sorted."""
    return json.dumps(plain, sort_keys=True)


@pytest.mark.parametrize("shape", SHAPES)
def test_every_key_shape_round_trips_through_every_command(
    tables: Tables, capsys: pytest.CaptureFixture[str], shape: str
) -> None:
    s = SHAPES[shape]
    table = ["--table", s.table]
    # GIVEN the item put, then changed, each change audited into its table's own trail
    assert run(tables, capsys, *table, "put", s.key, "1") == f"put {s.key!r}\n"
    tables.audit()
    assert run(tables, capsys, "put", s.key, "2", "--set", "note=x", *table) == f"put {s.key!r}\n"  # --table after
    tables.audit()
    first, second = (entry["modificationTime"] for entry in tables.trail(s.table)[::2])
    assert {entry["itemKey"] for entry in tables.trail(s.table)} == {s.key}
    # WHEN the operator reads its history THEN it is that table's, keyed by the text typed
    rows = run(tables, capsys, *table, "history", s.key).splitlines()[2:]
    assert [row.split()[1:3] for row in rows] == [[s.key, "created"], [s.key, "updated"], [s.key, "updated"]]
    # AND at and diff replay it
    assert run(tables, capsys, *table, "at", s.key, first) == as_json({**s.plain, "value": 1}) + "\n"
    assert run(tables, capsys, *table, "diff", s.key, first, second) == '+ note: "x"\n~ value: 1 -> 2\n'
    # WHEN it is rolled back THEN the item is written back under its typed key, and audited
    assert run(tables, capsys, *table, "rollback", s.key, "--to", first, "--yes") == (
        '- note: "x"\n~ value: 2 -> 1\n' + f"rolled {s.key!r} back\n"
    )
    item = tables.item(s.table, s.typed)
    assert item is not None and item["value"] == 1 and "note" not in item
    tables.audit()
    # WHEN it is deleted THEN it is gone, and the deletion is audited
    assert run(tables, capsys, *table, "delete", s.key) == f"deleted {s.key!r}\n"
    assert tables.item(s.table, s.typed) is None
    tables.audit()
    assert "oldValue" in tables.trail(s.table)[-1] and "newValue" not in tables.trail(s.table)[-1]
    # AND a rollback to before the deletion puts it back, under its typed key
    assert run(tables, capsys, *table, "rollback", s.key, "--to", first, "--yes").endswith(f"rolled {s.key!r} back\n")
    item = tables.item(s.table, s.typed)
    assert item is not None and item["value"] == 1
    # AND no other table's trail holds anything of it
    for other in TRAILS.keys() - {s.table}:
        assert tables.trail(other) == []


def test_without_table_the_first_audited_table_is_used(tables: Tables, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tables, capsys, "put", "K", "1") == "put 'K'\n"
    assert tables.item(CONFIGURATION, {"key": "K"}) is not None


def test_a_number_key_is_named_by_its_shortest_text(tables: Tables, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a numeric key typed with a trailing zero
    assert run(tables, capsys, "--table", ORDERS, "put", "101.50", "1") == "put '101.5'\n"
    tables.audit()
    # THEN the item is that number, and its history is under the text the trail gives it
    assert tables.item(ORDERS, {"Id": Decimal("101.5")}) is not None
    assert len(run(tables, capsys, "--table", ORDERS, "history", "101.5").splitlines()) == 3


def test_an_unknown_table_is_one_line_that_lists_the_audited_tables(
    tables: Tables, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["--table", "Nowhere", "put", "K", "1"], ["history", "K", "--table", "Nowhere"]):
        assert fails(tables, capsys, *argv) == (
            "config-audit: table 'Nowhere' is not audited here: "
            "AUDITED_TABLES names 'Configuration', 'FeatureFlags', 'Orders', 'Blobs'"
        )
    assert tables.stack.dynamodb.scan(TableName=CONFIGURATION)["Items"] == []


@pytest.mark.parametrize(
    ("table", "key", "why"),
    [
        (FLAGS, "tenant-1", "it is not a JSON object"),
        (FLAGS, "[1, 2]", "it is not a JSON object"),
        (FLAGS, '{"pk":"tenant-1"}', "it names 'pk', not 'pk' and 'sk'"),
        (FLAGS, '{"pk":"tenant-1","sk":7,"x":1}', "it names 'pk', 'sk', 'x', not 'pk' and 'sk'"),
        (FLAGS, '{"pk":"tenant-1","sk":"7"}', "'sk' is not a number"),
        (FLAGS, '{"pk":7,"sk":7}', "'pk' is not a non-empty string"),
        (FLAGS, '{"pk":"","sk":7}', "'pk' is not a non-empty string"),
        (FLAGS, '{"pk":"t","sk":NaN}', "NaN is no number"),
        (FLAGS, '{"pk":"t","sk":1e400}', "attribute 'sk' holds a number DynamoDB cannot store exactly"),
        (FLAGS, '{"pk":"' + "x" * 1000 + '","sk":7}', None),  # the partition key may be that long
        (ORDERS, "abc", "'Id' is not a number"),
        (ORDERS, " 101", "'Id' is not a number"),
        (ORDERS, "Infinity", "'Id' is not a number"),
        (BLOBS, "not base64!", "'blob' is not base64"),
        (BLOBS, "====", "'blob' is not base64"),
    ],
)
def test_a_key_that_does_not_fit_the_tables_schema_is_one_line_naming_the_schema(
    tables: Tables, capsys: pytest.CaptureFixture[str], table: str, key: str, why: str | None
) -> None:
    if why is None:  # the control: a key that fits is written
        run(tables, capsys, "--table", table, "put", key, "1")
        return
    line = fails(tables, capsys, "--table", table, "put", key, "1")
    assert why in line
    if "DynamoDB cannot store" not in why:
        schema = {
            FLAGS: "'pk' (a string) and 'sk' (a number)",
            ORDERS: "'Id' (a number)",
            BLOBS: "'blob' (binary)",
        }[table]
        example = {FLAGS: '{"pk":"text","sk":7}', ORDERS: "7", BLOBS: "AAE="}[table]
        assert line.startswith(f"config-audit: KEY {key[:80]!r} does not fit table {table!r}, whose key is {schema}: ")
        assert line.endswith(f"; give KEY as, for example, {example}")
    assert tables.stack.dynamodb.scan(TableName=table)["Items"] == []
    assert fails(tables, capsys, "--table", table, "delete", key) == line


def test_a_sort_key_over_1024_bytes_is_refused(
    tables: Tables, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a table whose sort key is a string
    tables.stack.dynamodb.create_table(
        TableName="Ranges",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )
    project = project_with(tmp_path / "ranges", AUDITED_TABLES=f"Configuration={AUDIT},Ranges=RangesAudit")
    # WHEN KEY's sort key is 1,026 bytes THEN it is refused, and one byte less is not
    capsys.readouterr()
    assert (
        cli.main(["--project-dir", project, "--table", "Ranges", "put", '{"pk":"t","sk":"' + "é" * 513 + '"}', "1"])
        == 1
    )
    [line] = capsys.readouterr().err.splitlines()
    assert "'sk' is longer than 1,024 bytes, DynamoDB's limit for a sort key" in line
    assert (
        cli.main(["--project-dir", project, "--table", "Ranges", "put", '{"pk":"t","sk":"' + "é" * 512 + '"}', "1"])
        == 0
    )


def test_put_cannot_set_a_key_attribute(tables: Tables, capsys: pytest.CaptureFixture[str]) -> None:
    line = fails(tables, capsys, "--table", FLAGS, "put", '{"pk":"t","sk":1}', "1", "--set", "sk=2")
    assert line == "config-audit: --set cannot change 'sk', the item's key: give it as KEY"
    assert tables.stack.dynamodb.scan(TableName=FLAGS)["Items"] == []


def test_a_write_in_between_makes_a_composite_key_rollback_refuse(
    tables: Tables, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a pk/sk item changed once, audited
    key = '{"pk":"tenant-1","sk":7}'
    run(tables, capsys, "--table", FLAGS, "put", key, "1")
    run(tables, capsys, "--table", FLAGS, "put", key, "2")
    tables.audit()
    first = tables.trail(FLAGS)[0]["modificationTime"]
    variables = {**STAGE["environment_variables"], "AUDITED_TABLES": f"Configuration={AUDIT},{FLAGS}={TRAILS[FLAGS]}"}
    trail = Trail(variables, {"region_name": REGION}, FLAGS)
    plan = plan_rollback(trail, key, first)
    # WHEN someone writes it after the plan, before the write
    boto3.resource("dynamodb", region_name=REGION).Table(FLAGS).put_item(Item={"pk": "tenant-1", "sk": 7, "value": 5})
    # THEN the rollback's condition, on the typed key, refuses and writes nothing
    with pytest.raises(NotDone, match="changed while rolling back: nothing written"):
        write_back(trail, key, plan.current, plan.target, operator=None)
    assert tables.item(FLAGS, {"pk": "tenant-1", "sk": 7}) == {"pk": "tenant-1", "sk": 7, "value": 5}


def test_a_binary_value_is_shown_as_base64(tables: Tables, capsys: pytest.CaptureFixture[str]) -> None:
    boto3.resource("dynamodb", region_name=REGION).Table(BLOBS).put_item(
        Item={"blob": b"\x00\x01", "payload": b"\xff", "parts": {b"\x01", b"\x02"}}
    )
    tables.audit()
    time = tables.trail(BLOBS)[0]["modificationTime"]
    shown = run(tables, capsys, "--table", BLOBS, "at", "AAE=", time)
    assert (
        shown
        == as_json({"blob": "AAE=", "payload": base64.b64encode(b"\xff").decode(), "parts": ["AQ==", "Ag=="]}) + "\n"
    )


def test_a_rollback_to_before_a_deletion_refuses_when_the_composite_key_item_came_back_meanwhile(
    tables: Tables, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a pk/sk item created and deleted, both audited
    key = '{"pk":"tenant-1","sk":7}'
    run(tables, capsys, "--table", FLAGS, "put", key, "1")
    run(tables, capsys, "--table", FLAGS, "delete", key)
    tables.audit()
    created = tables.trail(FLAGS)[0]["modificationTime"]
    variables = {**STAGE["environment_variables"], "AUDITED_TABLES": f"Configuration={AUDIT},{FLAGS}={TRAILS[FLAGS]}"}
    trail = Trail(variables, {"region_name": REGION}, FLAGS)
    plan = plan_rollback(trail, key, created)
    # WHEN someone creates it again before the rollback writes
    boto3.resource("dynamodb", region_name=REGION).Table(FLAGS).put_item(Item={"pk": "tenant-1", "sk": 7, "value": 9})
    # THEN the rollback's condition (the typed key's attribute must not exist) refuses
    with pytest.raises(NotDone, match="changed while rolling back: nothing written"):
        write_back(trail, key, plan.current, plan.target, operator=None)
    assert tables.item(FLAGS, {"pk": "tenant-1", "sk": 7}) == {"pk": "tenant-1", "sk": 7, "value": 9}


def test_an_item_older_than_its_trail_replays_under_its_typed_key(
    tables: Tables, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a pk/sk item that existed before auditing began (its creation never reached the trail)
    flags = boto3.resource("dynamodb", region_name=REGION).Table(FLAGS)
    flags.put_item(Item={"pk": "tenant-1", "sk": 7, "value": 1, "owner": "ops"})
    before = {r["eventID"] for r in read_all(tables.stack.streams, tables.streams[FLAGS])}  # left out: never audited
    flags.update_item(
        Key={"pk": "tenant-1", "sk": 7}, UpdateExpression="SET #v = :v", ExpressionAttributeNames={"#v": "value"},
        ExpressionAttributeValues={":v": 2},
    )  # fmt: skip
    records = [
        keys_as_lambda_sends_them(r)
        for r in read_all(tables.stack.streams, tables.streams[FLAGS])
        if r["eventID"] not in before
    ]
    from app import app

    function = Client(app, stage_name="dev", project_dir=tables.project)
    assert function.lambda_.invoke("audit_producer", {"Records": records}).payload == {"batchItemFailures": []}
    [update] = tables.trail(FLAGS)
    # WHEN the operator asks what it held after the update
    shown = run(tables, capsys, "--table", FLAGS, "at", '{"pk":"tenant-1","sk":7}', update["modificationTime"])
    # THEN what the trail knows stands under the item's own key attributes
    assert shown == as_json({"pk": "tenant-1", "sk": 7, "value": 2}) + "\n"


def test_a_table_keyed_on_value_has_no_room_for_value(
    tables: Tables, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tables.stack.dynamodb.create_table(
        TableName="Values",
        AttributeDefinitions=[{"AttributeName": "value", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "value", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    project = project_with(tmp_path / "values", AUDITED_TABLES=f"Configuration={AUDIT},Values=ValuesAudit")
    capsys.readouterr()
    assert cli.main(["--project-dir", project, "--table", "Values", "put", "K", "1"]) == 1
    assert (
        capsys.readouterr().err
        == "config-audit: the table's key has an attribute 'value', so VALUE has nowhere to go\n"
    )
    assert tables.stack.dynamodb.scan(TableName="Values")["Items"] == []
