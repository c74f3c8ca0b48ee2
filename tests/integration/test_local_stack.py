"""The whole flow on one machine: moto server on 127.0.0.1, poller, Chalice handler."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chalicelib import wiring
from local.stack import LOCAL_STAGE, LocalStack
from tests.conftest import ROOT
from tests.faults import WriteFaults

pytestmark = pytest.mark.slow


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def local() -> Iterator[LocalStack]:
    with LocalStack() as stack:
        yield stack


def test_changes_made_on_the_laptop_are_audited(local: LocalStack) -> None:
    local.start_poller()
    local.configuration.put_item(Item={"key": "FEATURE_X", "value": True})
    local.configuration.put_item(Item={"key": "FEATURE_X", "value": False})
    local.configuration.delete_item(Key={"key": "FEATURE_X"})
    wait_until(lambda: len(local.audit_entries()) == 3)
    created, changed, deleted = local.audit_entries()
    assert created["newValue"] == {"key": "FEATURE_X", "value": True}
    assert (changed["updatedAttribute"], changed["oldValue"], changed["newValue"]) == ("value", True, False)
    assert deleted["oldValue"] == {"key": "FEATURE_X", "value": False}


def test_the_local_stage_audits_a_change_of_each_table_into_its_own_trail_through_the_poller() -> None:
    with LocalStack(LOCAL_STAGE) as local:
        # GIVEN the local stage's three tables: the seed's, feature flags keyed on pk and sk, tenants on a number
        assert [(t.source, t.trail) for t in local.audited] == [
            ("Configuration", "Audit"),
            ("FeatureFlags", "FeatureFlagsAudit"),
            ("Tenants", "TenantsAudit"),
        ]
        local.start_poller()
        # WHEN a change is made to each
        flag = {"pk": "tenant-1", "sk": "flag#dark-mode"}
        local.configuration.put_item(Item={"key": "CACHE_TTL_SEC", "value": 3600})
        local.table("FeatureFlags").put_item(Item={**flag, "enabled": False})
        local.table("FeatureFlags").update_item(
            Key=flag, UpdateExpression="SET enabled = :on", ExpressionAttributeValues={":on": True}
        )
        local.table("Tenants").put_item(Item={"Id": 101, "plan": "gold"})
        wait_until(
            lambda: (
                len(local.audit_entries()) == 1
                and len(local.audit_entries("FeatureFlags")) == 2
                and len(local.audit_entries("Tenants")) == 1
            )
        )
        # THEN the seed's trail holds its change alone, exactly as before (no itemKeys)
        [seed] = local.audit_entries()
        assert (seed["itemKey"], seed["newValue"]) == ("CACHE_TTL_SEC", {"key": "CACHE_TTL_SEC", "value": 3600})
        assert "itemKeys" not in seed
        # AND the flags' trail holds the flag's changes under its key as text, with the typed key
        created, changed = local.audit_entries("FeatureFlags")
        assert created["itemKey"] == changed["itemKey"] == '{"pk":"tenant-1","sk":"flag#dark-mode"}'
        assert created["newValue"] == {**flag, "enabled": False} and changed["itemKeys"] == flag
        assert (changed["updatedAttribute"], changed["oldValue"], changed["newValue"]) == ("enabled", False, True)
        # AND the tenants' trail holds the tenant's creation under its number as text
        [tenant] = local.audit_entries("Tenants")
        assert (tenant["itemKey"], tenant["itemKeys"], tenant["newValue"]) == (
            "101",
            {"Id": 101},
            {"Id": 101, "plan": "gold"},
        )
        assert local.poller is not None and local.poller.stats.gave_up == []


def test_transient_write_failure_is_retried_by_the_poller_and_nothing_is_lost(
    local: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN DynamoDB throttles the function's first 20 writes: its 30 entries are 2 groups written
    # at once, 8 attempts each, so at least one group fails and more than one invocation absorbs
    monkeypatch.setattr("chalicelib.aws_calls.Backoff.delay", lambda self, attempt: 0.0)
    faults = WriteFaults(
        wiring.client("dynamodb"), local.client("dynamodb"), lambda n, _items: "throttle" if n < 20 else None
    )
    for number in range(30):
        local.configuration.put_item(Item={"key": f"KEY_{number % 4}", "value": number})
    # WHEN the poller feeds the function
    poller = local.start_poller(backoff_seconds=0.01)
    wait_until(lambda: len(local.audit_entries()) >= 30)
    local.stop_poller()
    # THEN the failed invocation was retried and every change is audited exactly once
    entries: list[dict[str, Any]] = local.audit_entries()
    assert faults.injected["throttle"] == 20 and poller.stats.retries >= 1
    values = [e["newValue"]["value"] if "updatedAttribute" not in e else e["newValue"] for e in entries]
    assert sorted(values) == list(range(30))
    assert len({e["id"] for e in entries}) == 30 and poller.stats.gave_up == []


def test_make_demo_runs_the_seed_scenario_and_stops_everything() -> None:
    done = subprocess.run([sys.executable, "-m", "local.demo"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    trail = out[out.index("\ntime ") :]  # the audit trail, after the narration of each step
    moto_user = r"arn:aws:sts::123456789012:user/moto \(cloudtrail\)"
    assert re.search(rf"CACHE_TTL_SEC\s+created\s+{moto_user}\s+- -> ", trail)
    assert re.search(rf"updated value\s+{moto_user}\s+3600 -> 1800", trail)
    assert "updated description" in trail and "deleted" in trail
    # the secret the demo stores is shown only as its digest
    assert "hunter2" not in trail
    assert re.search(r"updated cachePassword\s+\S+ \(cloudtrail\)\s+- -> \"redacted:hmac-sha256:[0-9a-f]{64}\"", trail)
    # and it ends with a rollback that is audited like any other change, with who made it
    assert "- config-audit rollback CACHE_TTL_SEC --to " in out and "rolled 'CACHE_TTL_SEC' back" in out
    seed_part, flags_part = out.split("\nFeatureFlags, its own trail beside the seed's:\n")
    last = seed_part.rstrip().splitlines()[-1]
    assert re.search(rf"created\s+{moto_user}\s+- -> .*\"value\": 1800", last)
    # then beside it a composite-key change: a flag created and turned on, printed as its own trail
    assert '- create flag {"pk":"tenant-1","sk":"flag#dark-mode"} in FeatureFlags' in flags_part
    flags_part, changes_part = flags_part.split("\n- config-audit changes --since 5m\n")
    flag_trail = flags_part[flags_part.index("\ntime ") :].strip().splitlines()[2:]
    assert len(flag_trail) == 2 and all("flag#dark-mode" in row for row in flag_trail), flag_trail
    assert re.search(r"\s+created\s+.*- -> \{\"enabled\": false, \"pk\": \"tenant-1\"", flag_trail[0])
    assert re.search(r"\s+updated enabled\s+.*false -> true$", flag_trail[1])
    # and it ends with the incident question: every change of both tables, newest first, with who
    # (the poller may still log the last flag's batch after the heading: the table starts at its header)
    table = changes_part[changes_part.index("\ntime ") : changes_part.index("\n- config-audit verify")]
    changes = table.strip().splitlines()
    assert changes[0].split()[:5] == ["time", "table", "key", "change", "who"]
    rows = changes[2:]
    assert len(rows) == 6 + 2 and all(re.search(moto_user, row) for row in rows), rows
    assert [row.split()[1] for row in rows] == ["FeatureFlags"] * 2 + ["Configuration"] * 6
    assert [row.split()[0] for row in rows] == sorted((row.split()[0] for row in rows), reverse=True)
    # and it ends with every trail verified against the digests the producer wrote into moto's S3
    verified = out[out.index("\n- config-audit verify\n") :].splitlines()[2]
    assert re.fullmatch(r"  8 entries verified against [1-9]\d* digests", verified), verified
    assert "everything started has been stopped" in out
    assert "_aws" not in out and '"level"' not in out  # progress lines, not the function's JSON
