"""The write path of the repository against an in-memory DynamoDB."""

from __future__ import annotations

import math
import threading
from typing import Any

import pytest

from chalicelib.audit.repository import DynamoDBAuditRepository
from chalicelib.aws_calls import Backoff, ConfigurationError
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
    assert set(result.refused) == {"refused"} and "maximum allowed size" in result.refused["refused"]
    assert set(fake.tables["Audit"]) == {e["id"]["S"] for e in items} - {"refused"}


def test_missing_table_is_a_configuration_error_naming_the_variable() -> None:
    repo, _ = repository(FakeDynamoDB(lambda n, r: "missing"))
    with pytest.raises(ConfigurationError, match="Audit table 'Audit' \\(AUDIT_TABLE_NAME\\) does not exist"):
        repo.save(entries(1))


class _Rendezvous(FakeDynamoDB):
    """Each call waits until another call is in flight too: only overlapping writes get through."""

    def __init__(self) -> None:
        super().__init__()
        self.barrier = threading.Barrier(2, timeout=5)

    def batch_write_item(self, RequestItems: dict[str, list[Any]]) -> dict[str, Any]:
        self.barrier.wait()
        return super().batch_write_item(RequestItems)


def test_groups_are_written_concurrently() -> None:
    # GIVEN a DynamoDB that answers a call only while a second one is in flight
    fake = _Rendezvous()
    repo = DynamoDBAuditRepository(fake, "Audit", Backoff(sleep=lambda _: None), write_concurrency=2)
    # WHEN two groups are saved, THEN both land: they were in flight at the same time
    result = repo.save(entries(50))
    assert len(fake.tables["Audit"]) == 50 and result.unwritten == set() and result.write_calls == 2


@pytest.mark.parametrize("concurrency", [1, 2, 4])
def test_a_group_that_cannot_be_written_loses_nothing_whatever_the_concurrency(concurrency: int) -> None:
    # GIVEN 200 entries (8 groups) and a DynamoDB that always throttles the second group
    items = entries(200)
    second = {e["id"]["S"] for e in items[25:50]}

    def script(_number: int, requests: list[Any]) -> str | None:
        return "throttle" if requests[0]["PutRequest"]["Item"]["id"]["S"] in second else None

    fake = FakeDynamoDB(script)
    repo = DynamoDBAuditRepository(
        fake, "Audit", Backoff(max_attempts=3, sleep=lambda _: None), write_concurrency=concurrency
    )
    # WHEN they are saved
    result = repo.save(items)
    # THEN the first group is written, the second reported, and every entry is one or the other
    written = set(fake.tables["Audit"])
    assert {e["id"]["S"] for e in items[:25]} <= written and second <= result.unwritten
    assert written | result.unwritten == {e["id"]["S"] for e in items} and not written & result.unwritten
    assert result.write_calls == len(fake.calls)
    # AND groups not yet started when it failed were not tried (all of them, written one at a time)
    if concurrency == 1:
        assert result.unwritten == {e["id"]["S"] for e in items[25:]}


def test_a_configuration_error_in_a_writer_thread_reaches_the_caller() -> None:
    repo = DynamoDBAuditRepository(FakeDynamoDB(lambda n, r: "missing"), "Audit", write_concurrency=4)
    with pytest.raises(ConfigurationError, match="AUDIT_TABLE_NAME"):
        repo.save(entries(100))


def test_write_concurrency_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="write_concurrency must be at least 1, not 0"):
        DynamoDBAuditRepository(FakeDynamoDB(), "Audit", write_concurrency=0)
