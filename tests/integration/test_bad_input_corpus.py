"""The bad-input corpus (tests/corpus/*.json): each malformed event gets a clear logged error, the
valid records beside it are still audited, and nothing blocks the shard."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from tests.conftest import Stack

CORPUS = sorted((Path(__file__).resolve().parent.parent / "corpus").glob("*.json"))


def expand(case: dict[str, Any]) -> tuple[dict[str, Any], list[str] | None, int]:
    """A case as (event, itemKeys audited in order or None, how many entries)."""
    spec = case.get("expand")
    if spec is None:
        return case["event"], case["audited"], len(case["audited"])
    [template] = case["event"]["Records"]
    records = []
    for number in range(spec["records"]):
        record = copy.deepcopy(template)
        key = f"BULK_{number:05d}"
        record["eventID"] = f"bulk-{number}"
        record["dynamodb"]["SequenceNumber"] = str(int(template["dynamodb"]["SequenceNumber"]) + number)
        record["dynamodb"]["Keys"]["key"]["S"] = key
        record["dynamodb"]["NewImage"]["key"]["S"] = key
        if number % spec["poison_every"] == spec["poison_every"] - 1:
            record["eventName"] = "UPSERT"
        records.append(record)
    poison = spec["records"] // spec["poison_every"]
    return {"Records": records}, None, spec["records"] - poison


def test_the_corpus_holds_at_least_40_cases() -> None:
    assert len(CORPUS) >= 40


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_bad_input_is_reported_and_valid_records_are_still_audited(
    path: Path, stack: Stack, client: Client, logs: Callable[[], list[dict[str, Any]]]
) -> None:
    case = json.loads(path.read_text())
    event, audited, count = expand(case)
    # WHEN the function gets the event
    response = client.lambda_.invoke("audit_producer", event).payload
    # THEN the shard moves on: nothing to retry
    assert response == {"batchItemFailures": []}
    # AND every valid record is audited
    entries = stack.audit_entries()
    assert len(entries) == count
    if audited is not None:
        assert [e["itemKey"] for e in entries] == audited
    # AND each bad record has one ERROR line that names it and says what is wrong
    errors = [line for line in logs() if line["level"] == "ERROR"]
    assert len(errors) == len(case["errors"]), [e["reason"] for e in errors]
    for line, expected in zip(errors, case["errors"], strict=True):
        assert expected in line["reason"]
        assert line["message"].startswith("poison record skipped: ")
