"""The write path of the repository against an in-memory DynamoDB."""

from __future__ import annotations

import math
from typing import Any

import pytest

from chalicelib.audit_repository import Backoff, DynamoDBAuditRepository
from chalicelib.errors import ConfigurationError
from tests.fakes import FakeDynamoDB


def entries(count: int, key: str = "K") -> list[dict[str, Any]]:
    return [{"id": {"S": f"id-{i:05d}"}, "itemKey": {"S": key}} for i in range(count)]


def repository(fake: FakeDynamoDB, attempts: int = 8) -> tuple[DynamoDBAuditRepository, list[float]]:
    sleeps: list[float] = []
    backoff = Backoff(max_attempts=attempts, sleep=sleeps.append, jitter=lambda: 1.0)
    return DynamoDBAuditRepository(fake, "Audit", backoff), sleeps


@pytest.mark.parametrize("count", [0, 1, 24, 25, 26, 100, 1001])
def test_writes_cost_ceil_of_entries_over_25_calls(count: int) -> None:
    fake = FakeDynamoDB()
    repo, _ = repository(fake)
    result = repo.save(entries(count))
    assert len(fake.calls) == result.write_calls == math.ceil(count / 25)
    assert len(fake.tables.get("Audit", {})) == count
    assert result.unwritten == set()


def test_unprocessed_items_are_resent_with_growing_jittered_delays() -> None:
    fake = FakeDynamoDB(lambda n, r: "half" if n < 4 else None)
    repo, sleeps = repository(fake)
    result = repo.save(entries(25))
    assert len(fake.tables["Audit"]) == 25 and result.unwritten == set()
    assert sleeps == sorted(sleeps) and len(sleeps) == 4 and sleeps[0] > 0


def test_backoff_is_capped() -> None:
    delays: list[float] = []
    backoff = Backoff(base_seconds=0.05, cap_seconds=2.0, sleep=delays.append, jitter=lambda: 1.0)
    for attempt in range(1, 12):
        backoff.wait(attempt)
    assert max(delays) == 2.0


def test_group_that_never_gets_written_stops_the_save_and_reports_the_rest() -> None:
    fake = FakeDynamoDB(lambda n, r: "throttle" if n >= 1 else None)
    repo, _ = repository(fake, attempts=3)
    items = entries(60)
    result = repo.save(items)
    assert len(fake.tables["Audit"]) == 25  # the first group landed
    assert result.unwritten == {e["id"]["S"] for e in items[25:]}
    assert len(fake.calls) == 1 + 3  # bounded: no endless loop


def test_entries_dynamodb_refuses_are_isolated_and_the_others_written() -> None:
    fake = FakeDynamoDB()
    repo, _ = repository(fake)
    items = entries(10) + entries(1, key="REFUSED") + [{"id": {"S": "late"}, "itemKey": {"S": "K"}}]
    items[10]["id"] = {"S": "refused"}
    result = repo.save(items)
    assert set(result.rejected) == {"refused"} and "maximum allowed size" in result.rejected["refused"]
    assert set(fake.tables["Audit"]) == {e["id"]["S"] for e in items} - {"refused"}


def test_missing_table_is_a_configuration_error_naming_the_variable() -> None:
    repo, _ = repository(FakeDynamoDB(lambda n, r: "missing"))
    with pytest.raises(ConfigurationError, match="Audit table 'Audit' \\(AUDIT_TABLE_NAME\\) does not exist"):
        repo.save(entries(1))
