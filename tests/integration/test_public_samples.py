"""Stream events as AWS's docs, the SAM CLI, Powertools and a capture of real streams publish them
(tests/events/public/SOURCES.md): every record audits under its own key, except those SPEC.md calls
poison (no ApproximateCreationDateTime, a KEYS_ONLY view), and binary keys captured from moto."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import Binary
from chalice.test import Client

from local.stack import read_audit
from local.stream import read_all
from tests.conftest import AUDIT, REGION, Stack, create_keyed_table, project_with

PUBLIC = Path(__file__).resolve().parent.parent / "events" / "public"

# file -> (entries as (itemKey, change, itemKeys), poison reasons in sequence order)
EXPECTED: dict[str, tuple[list[tuple[str, str, Any]], list[str]]] = {
    "sam-cli-dynamodb-update.json": (
        [("101", "created", {"Id": 101}), ("101", "Message", {"Id": 101}), ("101", "deleted", {"Id": 101})], []),
    "powertools-dynamo-stream-event.json": (
        [("101", "created", {"Id": 101})], ["record has no dynamodb.ApproximateCreationDateTime"]),
    "aws-docs-with-ddb.json": ([], ["record has no dynamodb.ApproximateCreationDateTime"] * 3),
    "streams-test-pk-sk-new-and-old-images.json": (
        [('{"pk":"a","sk":"b"}', "created", {"pk": "a", "sk": "b"}),
         ('{"pk":"a","sk":"b"}', "data", {"pk": "a", "sk": "b"}),
         ('{"pk":"a","sk":"b"}', "deleted", {"pk": "a", "sk": "b"})], []),
    "streams-test-pk-sk-keys-only.json": ([], ["record has no NewImage (stream view type KEYS_ONLY)"]),
}  # fmt: skip


def change(entry: dict[str, Any]) -> str:
    if "updatedAttribute" in entry:
        return str(entry["updatedAttribute"])
    return "created" if "newValue" in entry else "deleted"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_public_sample_audits_under_its_own_key_or_is_poison_for_a_reason_spec_names(
    name: str, stack: Stack, client: Client, logs: Callable[[], list[dict[str, Any]]]
) -> None:
    event = json.loads((PUBLIC / name).read_text())
    entries, poison = EXPECTED[name]
    # WHEN the function gets the event as published
    assert client.lambda_.invoke("audit_producer", event).payload == {"batchItemFailures": []}
    # THEN each record that can be audited is, under its own key as text, with its typed key
    audited = stack.audit_entries()
    assert [(e["itemKey"], change(e), e.get("itemKeys")) for e in audited] == entries
    # AND each other one is set aside with the reason SPEC.md gives for it
    reasons = [line["reason"] for line in logs() if line["level"] == "ERROR"]
    assert len(reasons) == len(poison) and all(want in got for want, got in zip(poison, reasons, strict=True))


def test_the_samples_numeric_key_reads_back_through_the_history(stack: Stack, client: Client) -> None:
    import warnings

    client.lambda_.invoke("audit_producer", json.loads((PUBLIC / "sam-cli-dynamodb-update.json").read_text()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        body = json.loads(client.http.get("/audit/101").body)
    assert [change(e) for e in body["entries"]] == ["deleted", "Message", "created"]
    assert body["entries"][1]["oldValue"] == "New item!" and body["entries"][1]["newValue"] == "This item has changed"


def test_binary_keys_captured_from_a_stream_audit_under_their_base64(stack: Stack, tmp_path: Path) -> None:
    from app import app

    # GIVEN a table keyed by a binary hash and a binary range key, changed through its stream
    arn = create_keyed_table(stack.dynamodb, "Blobs", [("h", "B"), ("r", "B")], "BlobsAudit")
    blobs = boto3.resource("dynamodb", region_name=REGION).Table("Blobs")
    blobs.put_item(Item={"h": Binary(b"\x00\xff"), "r": Binary(b"\x01"), "v": 1})
    blobs.update_item(Key={"h": Binary(b"\x00\xff"), "r": Binary(b"\x01")}, UpdateExpression="SET v = :v",
                      ExpressionAttributeValues={":v": 2})  # fmt: skip
    client = Client(
        app,
        stage_name="dev",
        project_dir=project_with(tmp_path, AUDITED_TABLES=f"Configuration={AUDIT},Blobs=BlobsAudit"),
    )
    # WHEN the function audits what the stream holds
    records = list(read_all(stack.streams, arn))
    assert client.lambda_.invoke("audit_producer", {"Records": records}).payload == {"batchItemFailures": []}
    # THEN both entries are keyed by the key's base64 text, and carry the typed binary key
    created, changed = read_audit(stack.dynamodb, "BlobsAudit")
    assert created["itemKey"] == changed["itemKey"] == '{"h":"AP8=","r":"AQ=="}'
    assert changed["itemKeys"] == {"h": Binary(b"\x00\xff"), "r": Binary(b"\x01")}
    assert (changed["updatedAttribute"], changed["oldValue"], changed["newValue"]) == ("v", 1, 2)
    # AND the history API serves it by that text, the typed key rendered as plain JSON (base64)
    import urllib.parse
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        response = client.http.get("/audit/" + urllib.parse.quote('{"h":"AP8=","r":"AQ=="}', safe="") + "?table=Blobs")
    body = json.loads(response.body)
    assert response.status_code == 200 and [e["itemKeys"] for e in body["entries"]] == [{"h": "AP8=", "r": "AQ=="}] * 2
