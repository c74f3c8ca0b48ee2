"""Never lose, never duplicate: write faults on a share of calls, Lambda's redelivery, and the
invariant that every change is audited exactly once once DynamoDB recovers."""

from __future__ import annotations

import hashlib
import random
import uuid
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from bench.workload import records as workload
from chalicelib import wiring
from tests.conftest import AUDIT, Stack, project_with
from tests.faults import FAULTS, Plan, WriteFaults
from tests.lambda_like import Redelivery


def faulty_until(calls: int, rate: float, seed: int) -> Plan:
    """A random fault on ``rate`` of the first ``calls`` write calls; healthy after that."""
    rng = random.Random(seed)
    return lambda number, _items: rng.choice(FAULTS) if number < calls and rng.random() < rate else None


def spec_id(name: str) -> str:
    """SPEC.md's id: a version-4-format UUID derived from the eventID (and attribute), by hand here."""
    return str(uuid.UUID(bytes=hashlib.blake2b(name.encode(), digest_size=16).digest(), version=4))


def expected_ids(records: list[dict[str, Any]]) -> set[str]:
    """The ids of every entry the records must give, read off the records (the workload writes
    each value one way, so a changed attribute is one whose wire form changed)."""
    ids = set()
    for record in records:
        event_id, body = record["eventID"], record["dynamodb"]
        if record["eventName"] != "MODIFY":
            ids.add(spec_id(event_id))
            continue
        old, new = body["OldImage"], body["NewImage"]
        for name in (old.keys() | new.keys()) - {"key"}:
            if old.get(name) != new.get(name):
                ids.add(spec_id(f"{event_id}\x1f{name}"))
    return ids


def audit_ids(stack: Stack) -> list[str]:
    ids: list[str] = []
    for page in stack.dynamodb.get_paginator("scan").paginate(TableName=AUDIT, ProjectionExpression="id"):
        ids.extend(item["id"]["S"] for item in page["Items"])
    return ids


@pytest.mark.parametrize(
    ("count", "batch_size", "rate", "faulty_calls", "report"),
    [
        (1, 100, 1.0, 20, False),
        (1, 100, 1.0, 20, True),
        (100, 100, 0.3, 10**9, True),
        (250, 100, 0.3, 60, False),
        (1000, 1000, 0.5, 150, True),
        (1000, 100, 0.5, 150, False),
        (1000, 1000, 1.0, 30, True),
        (10_000, 10_000, 0.2, 300, True),
    ],
    ids=lambda value: str(value),
)
def test_every_change_is_audited_exactly_once_whatever_failed_in_between(
    stack: Stack,
    dynamodb: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    count: int,
    batch_size: int,
    rate: float,
    faulty_calls: int,
    report: bool,
) -> None:
    from app import app

    monkeypatch.setattr("chalicelib.aws_calls.Backoff.delay", lambda self, attempt: 0.0)
    # GIVEN a stream of changes and a DynamoDB that throttles, defers, errs and times out
    records = workload(count, keys=max(10, count // 10), wide=True)
    expected = expected_ids(records)
    flag = "true" if report else "false"
    client = Client(app, stage_name="dev", project_dir=project_with(tmp_path, REPORT_BATCH_ITEM_FAILURES=flag))
    faults = WriteFaults(wiring.client("dynamodb"), dynamodb, faulty_until(faulty_calls, rate, seed=count))
    # WHEN Lambda delivers and redelivers the shard
    lambda_ = Redelivery(lambda event: client.lambda_.invoke("audit_producer", event).payload, batch_size)
    lambda_.run(records)
    # THEN faults happened, and every change is in the Audit table exactly once
    assert sum(faults.injected.values()) > 0
    ids = audit_ids(stack)
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == expected
    if faulty_calls < 10**9 and rate == 1.0:
        assert lambda_.errors + lambda_.partial > 0  # the function really did hand batches back
