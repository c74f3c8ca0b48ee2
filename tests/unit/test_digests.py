"""Digests with no AWS at all: the canonical form anyone can recompute, the objects a batch makes,
and the producer's rule that a batch is never acknowledged without its digest."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import pytest

from chalicelib import wiring
from chalicelib.audit.digests import Digest, DigestLine, canonical_form, digests_of, entry_hash
from chalicelib.audit.entries import entry_id
from chalicelib.audit.plan import plan_batch
from chalicelib.audit.producer import AuditProducer, BatchNotWritten
from chalicelib.aws_calls import RetryLater
from chalicelib.settings import AuditedTable, Settings, SettingsError
from tests.conftest import seed_event
from tests.fakes import InMemoryAuditRepository, InMemoryDeadLetters
from tests.records import created, poison, record

SEED = AuditedTable("Configuration", "Audit")


class InMemoryDigests:
    """The digest port: the objects it would write, by key; ``failing`` refuses every write."""

    enabled = True

    def __init__(self, failing: bool = False) -> None:
        self.objects: dict[str, bytes] = {}
        self.puts = 0
        self.failing = failing

    def write(self, digests: Sequence[Digest]) -> None:
        for digest in digests:
            self.puts += 1
            if self.failing:
                raise RetryLater("InternalError")
            self.objects[digest.key] = digest.body

    def listed(self) -> dict[str, str]:
        """Every entry the digests list: id -> sha256."""
        return {line["id"]: line["sha256"] for body in self.objects.values() for line in json.loads(body)["entries"]}


def producer(
    digests: InMemoryDigests, repository: InMemoryAuditRepository | None = None, report: bool = True
) -> AuditProducer:
    repository = repository or InMemoryAuditRepository()
    return AuditProducer(
        repository=repository,
        trails={SEED: repository},
        report_batch_item_failures=report,
        dead_letters=InMemoryDeadLetters(),
        digests=digests,
    )


def batch(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def test_the_seed_entrys_canonical_form_is_its_attribute_values_as_sorted_compact_json() -> None:
    # GIVEN SPEC.md's seed entry, as the producer builds it
    [entry] = plan_batch(seed_event()).entries
    # THEN its canonical form is exactly the text the README shows, and its hash that text's SHA-256
    text = (
        '{"id":{"S":"' + entry["id"]["S"] + '"},"itemKey":{"S":"CACHE_TTL_SEC"},'
        '"modificationTime":{"S":"2024-09-11T09:02:28.000Z"},'
        '"newValue":{"M":{"key":{"S":"CACHE_TTL_SEC"},"value":{"N":"3600"}}},'
        '"sequenceNumber":{"S":"9700002673137973216305"}}'
    )
    assert canonical_form(entry) == text.encode()
    assert entry_hash(entry) == hashlib.sha256(text.encode()).hexdigest()


def test_an_entry_hashes_alike_as_built_and_as_read_back_with_its_time_index_attribute() -> None:
    # GIVEN an entry as built (binary as bytes, a set in one order) and as a scan returns it
    # (its set in another order, the time index's timeShard and timeOrder added)
    built = {"id": {"S": "x"}, "newValue": {"M": {"b": {"B": b"\x00\xff"}, "tags": {"SS": ["b", "a", "é"]}}}}
    read = {
        "timeShard": {"S": "07"},
        "timeOrder": {"S": "2024-09-11T09:02:28.000Z#" + "9".zfill(40)},
        "id": {"S": "x"},
        "newValue": {"M": {"tags": {"SS": ["é", "a", "b"]}, "b": {"B": b"\x00\xff"}}},
    }
    # THEN both hash alike, and the CLI's base64 text of the binary does too
    assert entry_hash(built) == entry_hash(read)
    as_the_cli_prints_it = {"id": {"S": "x"}, "newValue": {"M": {"b": {"B": "AP8="}, "tags": {"SS": ["a", "b", "é"]}}}}
    assert entry_hash(built) == entry_hash(as_the_cli_prints_it)


@pytest.mark.parametrize(
    "changed",
    [
        {"id": {"S": "x"}, "newValue": {"N": "2"}},  # another value
        {"id": {"S": "x"}, "newValue": {"S": "1"}},  # another type
        {"id": {"S": "x"}, "newValue": {"N": "1"}, "note": {"S": ""}},  # an attribute added
        {"id": {"S": "x"}},  # an attribute removed
    ],
    ids=["value", "type", "attribute added", "attribute removed"],
)
def test_any_change_of_an_entry_changes_its_hash(changed: dict[str, Any]) -> None:
    assert entry_hash({"id": {"S": "x"}, "newValue": {"N": "1"}}) != entry_hash(changed)


def test_a_batch_spanning_two_hours_makes_one_digest_per_hour_named_by_its_own_hash() -> None:
    # GIVEN entries of one batch at 09:59 and 10:00
    lines = [
        _line("a", "2024-09-11T09:59:59.999Z"),
        _line("b", "2024-09-11T10:00:00.000Z"),
        _line("c", "2024-09-11T09:00:00.000Z"),
    ]
    # WHEN its digests are made, in any order of the lines
    digests = digests_of(lines)
    assert digests == digests_of(reversed(lines))  # a redelivery makes the very same objects
    # THEN one per hour, under the trail and the hour, each named by the SHA-256 of its body
    assert [d.key.rsplit("/", 1)[0] for d in digests] == ["Audit/2024/09/11/09", "Audit/2024/09/11/10"]
    for digest in digests:
        assert digest.key.endswith("/" + hashlib.sha256(digest.body).hexdigest() + ".json")
    assert [e["id"] for e in json.loads(digests[0].body)["entries"]] == ["a", "c"]


def _line(id_: str, time: str) -> DigestLine:
    return DigestLine(id_, "Audit", "K", time, "0" * 64)


def test_a_batch_writes_one_digest_listing_every_entry_written_and_no_poison() -> None:
    # GIVEN a batch of two changes and a poison record between them
    digests, repository = InMemoryDigests(), InMemoryAuditRepository()
    response = producer(digests, repository).handle(batch(created("A", "100"), poison("150"), created("B", "200")))
    # THEN one PutObject, listing exactly the entries written, with their hashes
    assert response == {"batchItemFailures": []}
    assert digests.puts == 1
    assert digests.listed() == {id_: entry_hash(entry) for id_, entry in repository.entries.items()}
    assert set(digests.listed()) == {entry_id("A-100"), entry_id("B-200")}


def test_an_entry_dynamodb_refused_for_good_is_not_in_the_digest() -> None:
    digests = InMemoryDigests()
    repository = InMemoryAuditRepository(refused_keys=frozenset({"REFUSED"}))
    producer(digests, repository).handle(batch(created("A", "100"), created("REFUSED", "200")))
    assert set(digests.listed()) == {entry_id("A-100")}


def test_a_batch_with_no_entry_writes_no_digest() -> None:
    digests = InMemoryDigests()
    same = {"key": {"S": "K"}, "value": {"N": "1"}}
    producer(digests).handle(batch(record("MODIFY", same, same), poison("200")))
    assert digests.puts == 0


def test_a_digest_that_cannot_be_written_reports_the_batchs_first_record_with_entries() -> None:
    # GIVEN a bucket that refuses every write, a poison record first
    digests = InMemoryDigests(failing=True)
    response = producer(digests).handle(batch(poison("50"), created("A", "100"), created("B", "200")))
    # THEN Lambda resumes from the first record whose entries the digest was to list
    assert response == {"batchItemFailures": [{"itemIdentifier": "100"}]}


def test_a_digest_that_cannot_be_written_raises_where_partial_responses_are_off() -> None:
    with pytest.raises(BatchNotWritten, match="the batch's digest not written"):
        producer(InMemoryDigests(failing=True), report=False).handle(batch(created("A", "100")))


def test_a_producer_writing_digests_must_know_its_trails() -> None:
    with pytest.raises(ValueError, match="needs its trails"):
        AuditProducer(repository=InMemoryAuditRepository(), digests=InMemoryDigests())


STAGE = {"CONFIGURATION_TABLE_NAME": "Configuration", "AUDIT_TABLE_NAME": "Audit"}


def test_digests_are_off_unless_digest_bucket_is_set_and_kept_seven_years_by_default() -> None:
    settings = Settings.from_environ(STAGE)
    assert (settings.digest_bucket, settings.digest_retention_days) == (None, 2557)
    on = Settings.from_environ({**STAGE, "DIGEST_BUCKET": " audit-digests ", "DIGEST_RETENTION_DAYS": "3650"})
    assert (on.digest_bucket, on.digest_retention_days) == ("audit-digests", 3650)


@pytest.mark.parametrize("days", ["0", "-1", "7.5", "seven", "36501", "٣"])
def test_a_retention_that_is_no_whole_number_of_days_is_a_settings_error_naming_it(days: str) -> None:
    with pytest.raises(SettingsError, match=f"DIGEST_RETENTION_DAYS must be a whole number of days .*{days!r}"):
        Settings.from_environ({**STAGE, "DIGEST_RETENTION_DAYS": days})


def test_the_producer_has_no_s3_client_unless_digest_bucket_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []

    def client(service: str, region: str | None = None) -> object:
        made.append(service)
        return object()

    monkeypatch.setattr(wiring, "client", client)
    assert wiring.producer_for(Settings.from_environ(STAGE)).digests.enabled is False
    assert "s3" not in made
    assert wiring.producer_for(Settings.from_environ({**STAGE, "DIGEST_BUCKET": "d"})).digests.enabled is True
    assert "s3" in made
