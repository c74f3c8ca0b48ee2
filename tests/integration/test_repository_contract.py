"""One contract for the audit repository port, run against the in-memory fake the unit tests use
and against the DynamoDB adapter (moto): the fake is only worth what this proves of it."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.audit.entries import Entry
from chalicelib.audit.plan import plan_batch
from chalicelib.audit.repository import AuditRepository, BadPageToken, DynamoDBAuditRepository
from infra.tables import create_tables
from tests.conftest import AUDIT, CONFIGURATION
from tests.fakes import InMemoryAuditRepository
from tests.records import item, record


def history_of(key: str, *changes: tuple[str, str, float]) -> list[Entry]:
    """Entries of ``key``: (value, sequence number, epoch seconds) each, created then changed."""
    records = []
    previous = None
    for number, (value, sequence, when) in enumerate(changes):
        new = item(key, value={"N": value})
        name = "INSERT" if previous is None else "MODIFY"
        records.append(record(name, previous, new, event_id=f"{key}-{number}", sequence=sequence, created=when))
        previous = new
    return plan_batch({"Records": records}).entries


def values(entries: list[Entry]) -> list[str]:
    return [entry["newValue"]["N"] if "updatedAttribute" in entry else entry["newValue"]["M"]["value"]["N"]
            for entry in entries]  # fmt: skip


class RepositoryContract:
    """What every audit repository does; subclasses say which one."""

    @pytest.fixture
    def repository(self) -> Iterator[AuditRepository]:
        raise NotImplementedError

    def test_history_is_newest_first_by_time_then_sequence_number(self, repository: AuditRepository) -> None:
        # two changes in one second, told apart by their sequence numbers (compared as integers)
        entries = history_of("K", ("1", "90", 1000.0), ("2", "100", 1001.0), ("3", "99999", 1001.0))
        repository.save(entries)
        page = repository.history("K", 10)
        assert values(page.entries) == ["3", "2", "1"] and page.next is None

    def test_saving_an_entry_again_overwrites_it(self, repository: AuditRepository) -> None:
        entries = history_of("K", ("1", "1", 1000.0))
        repository.save(entries)
        result = repository.save(entries)
        assert result.unwritten == set() and len(repository.history("K", 10).entries) == 1

    def test_pages_cover_the_history_once_in_order(self, repository: AuditRepository) -> None:
        changes = [(str(n), str(100 + n), 1000.0 + n // 3) for n in range(11)]
        repository.save(history_of("K", *changes))
        seen: list[str] = []
        token = None
        for _ in range(10):
            page = repository.history("K", 4, token)
            seen.extend(values(page.entries))
            if (token := page.next) is None:
                break
        assert seen == [str(n) for n in reversed(range(11))]

    def test_other_keys_are_not_in_a_keys_history(self, repository: AuditRepository) -> None:
        repository.save(history_of("A", ("1", "1", 1000.0)) + history_of("B", ("2", "2", 1000.0)))
        assert values(repository.history("A", 10).entries) == ["1"]
        assert repository.history("nobody", 10).entries == []

    def test_a_token_it_did_not_issue_is_refused(self, repository: AuditRepository) -> None:
        with pytest.raises(BadPageToken):
            repository.history("K", 10, "not-a-token")

    def test_a_well_formed_token_that_names_no_entry_is_refused(self, repository: AuditRepository) -> None:
        repository.save(history_of("K", ("1", "100", 1000.0), ("2", "101", 1001.0), ("3", "102", 1002.0)))
        token = repository.history("K", 1).next
        assert token is not None and repository.history("K", 1, token).entries  # the real one pages on
        # the same token, but naming a moment at which K has no entry
        scope, _time, *rest = token.split(".")
        forged = ".".join([scope, base64.urlsafe_b64encode(b"2000-01-01T00:00:00.000Z").decode().rstrip("="), *rest])
        with pytest.raises(BadPageToken, match="does not name an entry"):
            repository.history("K", 1, forged)


class TestInMemoryRepository(RepositoryContract):
    @pytest.fixture
    def repository(self) -> Iterator[AuditRepository]:
        yield InMemoryAuditRepository()


class TestDynamoDBRepository(RepositoryContract):
    @pytest.fixture
    def repository(self, dynamodb: Any) -> Iterator[AuditRepository]:
        create_tables(dynamodb, CONFIGURATION, AUDIT)
        yield DynamoDBAuditRepository(dynamodb, AUDIT)
