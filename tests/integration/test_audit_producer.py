"""audit_producer end to end: real writes to a moto Configuration table, its stream as Lambda
shapes it, the handler invoked through chalice.test.Client, the Audit table read back."""

from __future__ import annotations

import base64
import math
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from boto3.dynamodb.types import Binary
from chalice.test import Client

from chalicelib import wiring
from chalicelib.audit.entries import entry_id
from chalicelib.aws_calls import ConfigurationError
from tests.conftest import AUDIT, ROOT, Stack, plain, project_with, seed_event
from tests.faults import WriteFaults, always, every, unless_all_in
from tests.unit.test_actors import cloudtrail


def invoke(client: Client, event: dict[str, Any]) -> Any:
    return client.lambda_.invoke("audit_producer", event).payload


def count_write_calls() -> list[int]:
    """BatchWriteItem calls the function makes, as the number of items in each."""
    calls: list[int] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(sum(len(v) for v in params["RequestItems"].values()))

    wiring.client("dynamodb").meta.events.register("provide-client-params.dynamodb.BatchWriteItem", record)
    return calls


def test_seed_event_gives_exactly_one_entry(stack: Stack, client: Client) -> None:
    assert invoke(client, seed_event()) == {"batchItemFailures": []}
    [entry] = stack.audit_entries()
    assert entry["itemKey"] == "CACHE_TTL_SEC"
    assert entry["modificationTime"] == "2024-09-11T09:02:28.000Z"
    assert entry["newValue"] == {"key": "CACHE_TTL_SEC", "value": 3600}
    assert entry["sequenceNumber"] == "9700002673137973216305"


def test_a_settings_lifecycle_is_audited_in_order(stack: Stack, client: Client) -> None:
    # GIVEN a setting created, changed, given a description, then deleted
    stack.put("CACHE_TTL_SEC", value=3600)
    stack.put("CACHE_TTL_SEC", value=1800)
    stack.put("CACHE_TTL_SEC", value=1800, description="seconds")
    stack.delete("CACHE_TTL_SEC")
    # WHEN the stream's batch reaches the function
    response = invoke(client, stack.new_event())
    # THEN one entry per change, from what to what
    assert response == {"batchItemFailures": []}
    got = [(e.get("updatedAttribute"), e.get("oldValue"), e.get("newValue")) for e in stack.audit_entries()]
    assert got == [
        (None, None, {"key": "CACHE_TTL_SEC", "value": 3600}),
        ("value", 3600, 1800),
        ("description", None, "seconds"),
        (None, {"key": "CACHE_TTL_SEC", "value": 1800, "description": "seconds"}, None),
    ]


def test_moto_no_op_write_yields_no_entry(stack: Stack, client: Client) -> None:
    stack.put("FLAG", value=True)
    stack.put("FLAG", value=True)  # moto emits a MODIFY for this; DynamoDB would not
    event = stack.new_event()
    assert [r["eventName"] for r in event["Records"]] == ["INSERT", "MODIFY"]
    invoke(client, event)
    assert len(stack.audit_entries()) == 1


EVERY_TYPE: dict[str, Any] = {
    "s": "text",
    "n": Decimal("12345678901234567890123456789012345678"),
    "f": Decimal("0.1"),
    "neg": Decimal("-3600"),
    "b": Binary(b"\x00\xffbinary"),
    "t": True,
    "z": None,
    "m": {"inner": Decimal("1"), "deep": {"list": [Decimal("2"), "x"]}},
    "l": [Decimal("1"), "two", None, False],
    "ss": {"a", "b"},
    "ns": {Decimal("1"), Decimal("0.5")},
    "bs": {Binary(b"\x00"), Binary(b"\x01")},
}


def test_every_dynamodb_type_round_trips_exactly(stack: Stack, client: Client) -> None:
    stack.put("TYPES", **EVERY_TYPE)
    stack.put("TYPES", **{name: EVERY_TYPE["s"] for name in EVERY_TYPE})
    invoke(client, stack.new_event())
    created, *changed = stack.audit_entries()
    assert created["newValue"] == {"key": "TYPES", **EVERY_TYPE}
    assert {e["updatedAttribute"]: e["oldValue"] for e in changed} == {
        name: value for name, value in EVERY_TYPE.items() if name != "s"
    }
    # the wire form is exact too: 3600 is N "3600", never "3600.0" or a string
    raw = stack.dynamodb.scan(TableName=AUDIT)["Items"]
    numbers = [i["oldValue"] for i in raw if i.get("updatedAttribute", {}).get("S") == "f"]
    assert numbers == [{"N": "0.1"}]


def test_binary_arrives_base64_as_in_lambda_and_is_stored_as_bytes(stack: Stack, client: Client) -> None:
    stack.put("BIN", value=Binary(b"\x01\x02"))
    event = stack.new_event()
    assert event["Records"][0]["dynamodb"]["NewImage"]["value"] == {"B": base64.b64encode(b"\x01\x02").decode()}
    invoke(client, event)
    assert stack.audit_entries()[0]["newValue"]["value"] == Binary(b"\x01\x02")


def test_redelivered_batch_writes_no_duplicates(stack: Stack, client: Client) -> None:
    for value in range(5):
        stack.put("RETRIED", value=value)
    event = stack.new_event()
    invoke(client, event)
    first = stack.audit_entries()
    invoke(client, event)  # Lambda delivers at least once
    assert stack.audit_entries() == first and len(first) == 5


@pytest.mark.parametrize("changes", [1, 25, 26, 130])
def test_a_batch_costs_ceil_entries_over_25_write_calls(stack: Stack, client: Client, changes: int) -> None:
    for number in range(changes):
        stack.put(f"KEY_{number:03d}", value=number)
    calls = count_write_calls()
    invoke(client, stack.new_event())
    assert len(calls) == math.ceil(changes / 25) and sum(calls) == changes
    assert len(stack.audit_entries()) == changes


@pytest.mark.parametrize("fault", ["unprocessed", "throttle", "server_error", "timeout"])
def test_write_faults_lose_nothing_and_duplicate_nothing(
    stack: Stack, client: Client, fault: str, dynamodb: Any
) -> None:
    # GIVEN 120 changes and a DynamoDB that fails every other BatchWriteItem
    for number in range(120):
        stack.put(f"KEY_{number % 7}", value=number)
    faults = WriteFaults(wiring.client("dynamodb"), dynamodb, every(2, fault))
    # WHEN the batch is handled
    response = invoke(client, stack.new_event())
    # THEN every change is audited exactly once
    assert response == {"batchItemFailures": []}
    assert faults.injected[fault] > 0
    entries = stack.audit_entries()
    assert len(entries) == 120 == len({e["id"] for e in entries})
    assert sorted(
        e["newValue"]["value"] if "newValue" in e and isinstance(e["newValue"], dict) else e["newValue"]
        for e in entries
    ) == list(range(120))


def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("chalicelib.aws_calls.Backoff.delay", lambda self, attempt: 0.0)


def test_batch_not_written_reports_the_first_record_not_fully_written(
    stack: Stack, partial_client: Client, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fast_retries(monkeypatch)
    # GIVEN 60 records of which only the first group of 25 entries can be written (named by its
    # ids: the writer threads reach DynamoDB in no set order)
    for number in range(60):
        stack.put(f"KEY_{number:02d}", value=number)
    event = stack.new_event()
    first_group = {entry_id(record["eventID"]) for record in event["Records"][:25]}
    faults = WriteFaults(wiring.client("dynamodb"), dynamodb, unless_all_in(first_group, "throttle"))
    # WHEN the function runs with partial batch responses on
    response = invoke(partial_client, event)
    # THEN it names record 26, the first not written, and the Audit table holds records 1..25
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][25]["dynamodb"]["SequenceNumber"]}]}
    assert len(stack.audit_entries()) == 25
    # AND Lambda's retry from that record completes the history exactly once
    faults.remove()
    retry = {"Records": event["Records"][25:]}
    assert invoke(partial_client, retry) == {"batchItemFailures": []}
    entries = stack.audit_entries()
    assert [e["newValue"]["value"] for e in entries] == list(range(60))


def test_batch_not_written_raises_where_partial_responses_are_off(
    stack: Stack, client: Client, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fast_retries(monkeypatch)
    stack.put("KEY", value=1)
    WriteFaults(wiring.client("dynamodb"), dynamodb, always("throttle"))
    with pytest.raises(
        Exception,
        match="1 audit entries were not written and 0 not published; first record not fully written has SequenceNumber",
    ):
        invoke(client, stack.new_event())
    assert stack.audit_entries() == []


def test_poison_records_are_logged_and_skipped_and_the_rest_audited(stack: Stack, client: Client, logs: Any) -> None:
    stack.put("GOOD_1", value=1)
    stack.put("GOOD_2", value=2)
    event = stack.new_event()
    poison = dict(event["Records"][0], eventID="poison-1", eventName="UPSERT")
    poison["dynamodb"] = dict(poison["dynamodb"], SequenceNumber="1")
    event["Records"].insert(1, poison)
    assert invoke(client, event) == {"batchItemFailures": []}
    assert [e["itemKey"] for e in stack.audit_entries()] == ["GOOD_1", "GOOD_2"]
    [error] = [line for line in logs() if line["level"] == "ERROR"]
    assert error["eventID"] == "poison-1" and error["sequenceNumber"] == "1"
    assert "unknown eventName 'UPSERT'" in error["reason"]


def test_entry_dynamodb_refuses_is_poison_not_a_blocked_shard(stack: Stack, client: Client, logs: Any) -> None:
    # GIVEN an item that fits the Configuration table while its entry (the item plus the entry's
    # own fields) does not: moto's limit is 405,000 bytes, so DynamoDB itself has to say no
    stack.put("SMALL", value=1)
    stack.put("HUGE", value="x" * 404_900)
    stack.put("AFTER", value=2)
    event = stack.new_event()
    # WHEN handled, THEN the rest is audited and the refused record is reported as poison
    assert invoke(client, event) == {"batchItemFailures": []}
    assert [e["itemKey"] for e in stack.audit_entries()] == ["SMALL", "AFTER"]
    [error] = [line for line in logs() if line["level"] == "ERROR"]
    assert error["sequenceNumber"] == event["Records"][1]["dynamodb"]["SequenceNumber"]
    assert "DynamoDB refused the entry" in error["reason"]


def test_missing_audit_table_is_one_clear_error(stack: Stack, client: Client, logs: Any) -> None:
    stack.dynamodb.delete_table(TableName=AUDIT)
    stack.put("KEY", value=1)
    with pytest.raises(Exception) as error:
        invoke(client, stack.new_event())
    assert type(error.value).__name__ == "ConfigurationError"
    assert str(error.value).startswith("Audit table 'Audit' (AUDIT_TABLE_NAME) does not exist")
    [line] = [line for line in logs() if line["level"] == "ERROR"]
    assert line["message"].startswith("misconfigured: Audit table 'Audit' (AUDIT_TABLE_NAME) does not exist")


def test_missing_variable_is_named_and_logged_like_a_missing_table(stack: Stack, tmp_path: Path, logs: Any) -> None:
    broken = Client(_app(), stage_name="dev", project_dir=project_with(tmp_path, AUDIT_TABLE_NAME=None))
    with pytest.raises(Exception, match="AUDIT_TABLE_NAME is not set") as error:
        invoke(broken, seed_event())
    assert isinstance(error.value, ConfigurationError)  # one family for every "the stage is set up wrong"
    [line] = [line for line in logs() if line["level"] == "ERROR"]
    assert line["message"].startswith("misconfigured: ") and "AUDIT_TABLE_NAME is not set" in line["message"]


def test_actor_recorder_names_a_missing_variable_in_one_error_line(stack: Stack, tmp_path: Path, logs: Any) -> None:
    broken = Client(_app(), stage_name="dev", project_dir=project_with(tmp_path, CONFIGURATION_TABLE_NAME=None))
    with pytest.raises(ConfigurationError, match="CONFIGURATION_TABLE_NAME is not set"):
        broken.lambda_.invoke(
            "actor_recorder", cloudtrail("PutItem", {"tableName": "Configuration", "key": {"key": "K"}})
        )
    [line] = [line for line in logs() if line["level"] == "ERROR"]
    assert line["message"].startswith("misconfigured: ")


def _app() -> Any:
    from app import app

    return app


def test_importing_the_app_makes_no_network_call_and_needs_no_stream_variable() -> None:
    guard = (
        "import socket\n"
        "def refuse(*a, **k): raise AssertionError('network call during import')\n"
        "socket.socket.connect = refuse\nsocket.create_connection = refuse\n"
        "import app\n"
        "[config] = [c for c in app.app.event_sources if c.name == 'audit_producer']\n"
        "print(config.stream_arn, config.starting_position, config.batch_size)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"}
    done = subprocess.run([sys.executable, "-c", guard], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "arn:aws:dynamodb:us-east-1:000000000000:table/CONFIGURATION_STREAM_ARN-is-not-set/stream/1970-01-01T00:00:00.000",
        "TRIM_HORIZON",
        "100",
    ]


def test_stage_variables_reach_the_registration_when_chalice_sets_them() -> None:
    code = "import app; [c] = [s for s in app.app.event_sources if hasattr(s, 'stream_arn')]; print(c.stream_arn)"
    arn = "arn:aws:dynamodb:eu-central-1:905418349556:table/x-Configuration-test/stream/2024-09-11T09:00:17.927"
    env = {"PATH": "/usr/bin:/bin", "CONFIGURATION_STREAM_ARN": arn}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == arn, done.stderr


def test_audit_entries_read_back_as_plain_values() -> None:
    assert plain({"n": {"N": "1"}}) == {"n": Decimal("1")}
