"""Digests end to end in moto: the producer writes them into an Object Lock bucket, and
`config-audit verify` finds every entry altered, removed or slipped in by hand."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import Binary
from botocore.exceptions import ClientError
from chalice.test import Client

from chalicelib import wiring
from chalicelib.audit.entries import entry_id
from config_audit import cli
from infra.digest_bucket import ensure_digest_bucket
from tests.conftest import AUDIT, REGION, ROOT, Stack, project_with

BUCKET = "config-audit-test-digests"


@pytest.fixture
def project(tmp_path: Path, stack: Stack) -> str:
    """The dev stage with DIGEST_BUCKET set, and its bucket in moto (Object Lock, compliance mode)."""
    ensure_digest_bucket(boto3.client("s3", region_name=REGION), BUCKET)
    return project_with(tmp_path, DIGEST_BUCKET=BUCKET)


@pytest.fixture
def digesting(project: str) -> Client:
    from app import app

    return Client(app, stage_name="dev", project_dir=project)


def invoke(client: Client, event: dict[str, Any]) -> Any:
    return client.lambda_.invoke("audit_producer", event).payload


def verify(project: str, capsys: pytest.CaptureFixture[str], *options: str) -> tuple[int, list[str], str]:
    """`config-audit verify` as an operator runs it: exit status, stdout lines, stderr."""
    capsys.readouterr()
    status = cli.main(["--stage", "dev", "--project-dir", project, "verify", *options])
    out, err = capsys.readouterr()
    return status, out.splitlines(), err


def digest_keys() -> list[str]:
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return [item["Key"] for item in listed]


@pytest.fixture
def audited(stack: Stack, digesting: Client) -> list[dict[str, Any]]:
    """Three changes of CACHE_TTL_SEC audited in one batch: the Audit table's items."""
    stack.put("CACHE_TTL_SEC", value=3600)
    stack.put("CACHE_TTL_SEC", value=1800)
    stack.put("FEATURE_X", value=True)
    assert invoke(digesting, stack.new_event()) == {"batchItemFailures": []}
    items: list[dict[str, Any]] = stack.dynamodb.scan(TableName=AUDIT)["Items"]
    return sorted(items, key=lambda item: item["sequenceNumber"]["S"])


def test_an_intact_trail_verifies_with_exit_status_0_and_one_line(
    audited: list[dict[str, Any]], project: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN one batch of three entries, and its one digest under the trail and the entries' hour
    [key] = digest_keys()
    hour = audited[0]["modificationTime"]["S"]
    assert re.fullmatch(rf"Audit/{hour[:4]}/{hour[5:7]}/{hour[8:10]}/{hour[11:13]}/[0-9a-f]{{64}}\.json", key)
    # WHEN the operator verifies the whole trail
    # THEN exit status 0 and the one line
    assert verify(project, capsys) == (0, ["3 entries verified against 1 digests"], "")


def test_an_entry_updated_by_hand_is_reported_altered_with_its_id(
    audited: list[dict[str, Any]], stack: Stack, project: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an administrator who lifted the policy and changed an entry's old value
    changed = audited[1]
    stack.dynamodb.update_item(
        TableName=AUDIT,
        Key={"id": changed["id"]},
        UpdateExpression="SET oldValue = :v",
        ExpressionAttributeValues={":v": {"N": "60"}},
    )
    # THEN verify says which entry, and exits 3
    status, lines, _ = verify(project, capsys)
    assert status == 3
    [line] = lines
    assert line.startswith(
        f'altered: id {changed["id"]["S"]} key "CACHE_TTL_SEC" at {changed["modificationTime"]["S"]}'
    )
    assert "its hash differs from digest Audit/" in line


@pytest.mark.parametrize("hide", ["REMOVE timeShard, timeOrder", "SET timeOrder = :v"])
def test_an_entry_taken_out_of_the_time_index_by_hand_is_reported_hidden_with_its_id(
    audited: list[dict[str, Any]], stack: Stack, project: str, capsys: pytest.CaptureFixture[str], hide: str
) -> None:
    # GIVEN an entry left as digested, but moved out of the time index (changes would not show it)
    hidden = audited[2]
    values = {":v": {"S": "0001-01-01T00:00:00.000Z#"}} if ":v" in hide else {}
    stack.dynamodb.update_item(
        TableName=AUDIT,
        Key={"id": hidden["id"]},
        UpdateExpression=hide,
        **({"ExpressionAttributeValues": values} if values else {}),
    )
    # THEN verify says which entry, and exits 3
    status, lines, _ = verify(project, capsys)
    assert (status, len(lines)) == (3, 1)
    assert lines[0].startswith(f'hidden: id {hidden["id"]["S"]} key "FEATURE_X"')
    assert "config-audit backfill puts it back" in lines[0]


def test_an_entry_deleted_by_hand_is_reported_removed_with_its_id(
    audited: list[dict[str, Any]], stack: Stack, project: str, capsys: pytest.CaptureFixture[str]
) -> None:
    gone = audited[2]
    stack.dynamodb.delete_item(TableName=AUDIT, Key={"id": gone["id"]})
    status, lines, _ = verify(project, capsys)
    assert (status, len(lines)) == (3, 1)
    assert lines[0].startswith(f'removed: id {gone["id"]["S"]} key "FEATURE_X" at {gone["modificationTime"]["S"]}')
    assert lines[0].endswith("not in the table")


def test_an_entry_added_by_hand_is_reported_slipped_in_with_its_id(
    audited: list[dict[str, Any]], stack: Stack, project: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an entry planted by hand, shaped like the others, inside the digested hour
    planted = copy.deepcopy(audited[0])
    planted["id"] = {"S": entry_id("forged-event")}
    planted["newValue"] = {"M": {"key": {"S": "CACHE_TTL_SEC"}, "value": {"N": "1"}}}
    stack.dynamodb.put_item(TableName=AUDIT, Item=planted)
    status, lines, _ = verify(project, capsys)
    assert status == 3
    assert lines == [
        f'slipped in: id {planted["id"]["S"]} key "CACHE_TTL_SEC" at {planted["modificationTime"]["S"]} '
        "in Audit: in no digest"
    ]


def test_every_planted_tampering_is_reported_at_once_oldest_first(
    audited: list[dict[str, Any]], stack: Stack, project: str, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.dynamodb.delete_item(TableName=AUDIT, Key={"id": audited[0]["id"]})
    stack.dynamodb.put_item(TableName=AUDIT, Item={**audited[1], "oldValue": {"N": "7"}})
    status, lines, _ = verify(project, capsys)
    assert status == 3
    assert [line.split(":")[0] for line in lines] == ["removed", "altered"]


def test_a_redelivered_batch_keeps_the_trail_intact(
    stack: Stack, digesting: Client, project: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a batch audited, then delivered again whole, then again from its second record on
    # (as Lambda does after a partial failure)
    stack.put("A", value=1)
    stack.put("B", value=2)
    event = stack.new_event()
    for delivered in (event, event, {"Records": event["Records"][1:]}):
        assert invoke(digesting, copy.deepcopy(delivered)) == {"batchItemFailures": []}
    # THEN the whole batch's digest was written once (the same name), the shorter one's beside it
    assert len(digest_keys()) == 2
    assert verify(project, capsys) == (0, ["2 entries verified against 2 digests"], "")


def fail_put_object(**_: Any) -> None:
    raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, "PutObject")


def test_a_digest_that_cannot_be_written_fails_the_batch_where_partial_responses_are_off(
    stack: Stack, digesting: Client
) -> None:
    stack.put("A", value=1)
    event = stack.new_event()
    wiring.client("s3").meta.events.register("before-call.s3.PutObject", fail_put_object)
    with pytest.raises(Exception, match="the batch's digest not written"):
        invoke(digesting, event)
    assert digest_keys() == []


def test_a_digest_that_cannot_be_written_reports_the_batchs_first_record(
    stack: Stack, tmp_path: Path, project: str
) -> None:
    from app import app

    partial = Client(app, stage_name="dev", project_dir=project_with(tmp_path / "partial", DIGEST_BUCKET=BUCKET,
                                                                     REPORT_BATCH_ITEM_FAILURES="true"))  # fmt: skip
    stack.put("A", value=1)
    stack.put("B", value=2)
    event = stack.new_event()
    wiring.client("s3").meta.events.register("before-call.s3.PutObject", fail_put_object)
    first = event["Records"][0]["dynamodb"]["SequenceNumber"]
    assert invoke(partial, event) == {"batchItemFailures": [{"itemIdentifier": first}]}


def test_a_window_verifies_only_its_entries_and_digests(
    audited: list[dict[str, Any]], stack: Stack, project: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an entry slipped in long before the window
    planted = {**audited[0], "id": {"S": "planted"}, "modificationTime": {"S": "2001-01-01T00:00:00.000Z"}}
    stack.dynamodb.put_item(TableName=AUDIT, Item=planted)
    start = audited[0]["modificationTime"]["S"]
    # THEN a window from the batch's time on holds the batch alone
    assert verify(project, capsys, "--from", start) == (0, ["3 entries verified against 1 digests"], "")
    # AND a window before it holds the planted entry alone, older than the trail's first digest
    status, lines, _ = verify(project, capsys, "--from", "2000-01-01T00:00:00Z", "--to", "2002-01-01T00:00:00Z")
    assert status == 3
    assert lines[0].startswith('slipped in: id planted key "CACHE_TTL_SEC" at 2001-01-01T00:00:00.000Z in Audit')
    assert "older than Audit's first digest" in lines[0]


def test_verify_without_a_digest_bucket_is_one_line_on_stderr(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    status, lines, err = verify(str(ROOT), capsys)
    assert (status, lines) == (1, [])
    assert err.startswith("config-audit: DIGEST_BUCKET is not set") and err.count("\n") == 1


def test_the_hand_recipe_in_trust_md_recomputes_the_digests_hash(
    stack: Stack, digesting: Client, tmp_path: Path
) -> None:
    jq = shutil.which("jq")
    if jq is None:
        pytest.skip("jq is not installed")
    # GIVEN an entry holding a string set and binary, audited with digests on
    stack.configuration.put_item(Item={"key": "TAGS", "tags": {"b", "a", "é"}, "blob": Binary(b"\x00\xff")})
    assert invoke(digesting, stack.new_event()) == {"batchItemFailures": []}
    [item] = stack.dynamodb.scan(TableName=AUDIT)["Items"]
    [key] = digest_keys()
    digest = json.loads(boto3.client("s3", region_name=REGION).get_object(Bucket=BUCKET, Key=key)["Body"].read())
    # WHEN the entry, as `aws dynamodb get-item --query Item` prints it, goes through docs/trust.md's jq filter
    [recipe] = re.findall(r"jq -cSj '([^']+)'", (ROOT / "docs" / "trust.md").read_text())
    printed = json.dumps(as_the_cli_prints_it(item), indent=4)
    canonical = subprocess.run([jq, "-cSj", recipe], input=printed.encode(), capture_output=True, check=True).stdout
    # THEN its SHA-256 is the one the digest lists
    assert hashlib.sha256(canonical).hexdigest() == digest["entries"][0]["sha256"]


def as_the_cli_prints_it(value: Any) -> Any:
    """An item as boto3 returns it -> as the AWS CLI prints it (binary as base64)."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {name: as_the_cli_prints_it(member) for name, member in value.items()}
    if isinstance(value, list):
        return [as_the_cli_prints_it(member) for member in value]
    return value


def test_a_windows_to_may_pass_now_and_a_finer_bound_keeps_its_last_millisecond(
    audited: list[dict[str, Any]], project: str, capsys: pytest.CaptureFixture[str]
) -> None:
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert verify(project, capsys, "--from", "1h", "--to", future) == (0, ["3 entries verified against 1 digests"], "")
    # --to half a millisecond after the last entry: that entry lies in [from, to), so it is checked
    last = max(entry["modificationTime"]["S"] for entry in audited)
    finer = last[:-1] + "5+00:00"
    assert verify(project, capsys, "--from", "1h", "--to", finer) == (0, ["3 entries verified against 1 digests"], "")
