"""The producer's rules, against in-memory ports: which record is reported, what is announced,
what a change is called. No AWS at all."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest

from chalicelib.audit.entries import entry_id
from chalicelib.audit.producer import AuditProducer, BatchNotWritten
from tests.fakes import InMemoryAuditRepository, InMemoryDeadLetters, InMemoryNotifier
from tests.records import TTL, created, item, poison, record


def producer(
    repository: InMemoryAuditRepository | None = None,
    notifier: InMemoryNotifier | None = None,
    dead_letters: InMemoryDeadLetters | None = None,
    report: bool = True,
) -> AuditProducer:
    return AuditProducer(
        repository=repository or InMemoryAuditRepository(),
        report_batch_item_failures=report,
        notifier=notifier or InMemoryNotifier(),
        dead_letters=dead_letters or InMemoryDeadLetters(),
    )


def batch(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def reported(response: dict[str, Any]) -> list[str]:
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def test_a_batch_fully_written_and_announced_reports_nothing() -> None:
    repository, notifier = InMemoryAuditRepository(), InMemoryNotifier()
    response = producer(repository, notifier).handle(batch(created("A", "100"), created("B", "200")))
    assert reported(response) == []
    assert set(repository.entries) == notifier.announced_ids() == {entry_id("A-100"), entry_id("B-200")}


@pytest.mark.parametrize(
    "delivered",
    [["100", "200", "300", "400"], ["400", "300", "200", "100"], ["300", "100", "400", "200"]],
    ids=["in order", "reversed", "shuffled"],
)
def test_the_lowest_sequence_number_not_written_is_reported(delivered: list[str]) -> None:
    # GIVEN four records, and a table that will not take the entry of the one at 300
    keys = {"100": "A", "200": "B", "300": "C", "400": "D"}
    repository = InMemoryAuditRepository(unwritable_keys=frozenset({"C"}))
    # WHEN the batch is handled, whatever order Lambda delivered it in
    response = producer(repository).handle(batch(*(created(keys[s], s) for s in delivered)))
    # THEN Lambda is told to resume from 300, and everything else that could land did
    assert reported(response) == ["300"]
    assert set(repository.entries) == {entry_id("A-100"), entry_id("B-200"), entry_id("D-400")}


def test_nothing_unwritten_is_announced_nor_anything_after_it() -> None:
    # GIVEN the record at 200 cannot be written
    repository = InMemoryAuditRepository(unwritable_keys=frozenset({"B"}))
    notifier = InMemoryNotifier()
    # WHEN the batch is handled
    producer(repository, notifier).handle(batch(created("A", "100"), created("B", "200"), created("C", "300")))
    # THEN only the record before it is announced: C is written, but comes round again with B
    assert notifier.announced_ids() == {entry_id("A-100")}
    assert entry_id("C-300") in repository.entries


def test_an_entry_that_could_not_be_published_holds_its_record() -> None:
    notifier = InMemoryNotifier(failing_keys=frozenset({"B"}))
    response = producer(notifier=notifier).handle(batch(created("A", "100"), created("B", "200")))
    assert reported(response) == ["200"]


@pytest.mark.parametrize(
    ("poison_at", "unwritable_at", "expected"),
    [
        ("150", "300", "150"),  # the poison record comes first: it is the lowest not done
        ("500", "300", "300"),  # the unwritten record comes first
        ("150", None, "150"),  # nothing else failed
        ("99", "300", "99"),  # compared as integers: "99" sorts after "300" as text
    ],
)
def test_a_poison_record_that_could_not_be_dead_lettered_is_not_done(
    poison_at: str, unwritable_at: str | None, expected: str
) -> None:
    # GIVEN a poison record the dead-letter queue will not take, and maybe a write that fails
    records = [created("A", "100"), poison(poison_at), created("C", "300"), created("D", "400")]
    repository = InMemoryAuditRepository(unwritable_keys=frozenset({"C"} if unwritable_at else set()))
    dead_letters = InMemoryDeadLetters(failing_event_ids=frozenset({f"poison-{poison_at}"}))
    # WHEN the batch is handled
    response = producer(repository, dead_letters=dead_letters).handle(batch(*records))
    # THEN the lowest sequence number not done is reported
    assert reported(response) == [expected]


def test_a_dead_lettered_poison_record_does_not_hold_the_batch() -> None:
    dead_letters = InMemoryDeadLetters()
    response = producer(dead_letters=dead_letters).handle(batch(created("A", "100"), poison("150")))
    assert reported(response) == []
    [letter] = dead_letters.letters
    assert letter["sequenceNumber"] == "150" and "no NewImage" in letter["reason"]


def test_an_entry_dynamodb_refuses_is_dead_lettered_and_not_announced() -> None:
    repository = InMemoryAuditRepository(refused_keys=frozenset({"HUGE"}))
    notifier, dead_letters = InMemoryNotifier(), InMemoryDeadLetters()
    response = producer(repository, notifier, dead_letters).handle(
        batch(created("A", "100"), created("HUGE", "200"), created("C", "300"))
    )
    assert reported(response) == []
    assert [letter["eventID"] for letter in dead_letters.letters] == ["HUGE-200"]
    assert notifier.announced_ids() == {entry_id("A-100"), entry_id("C-300")}


@pytest.mark.parametrize(
    ("identity", "kind"),
    [(TTL, "expired"), ({"type": "Service", "principalId": "backup.example.com"}, "deleted"), (None, "deleted")],
)
def test_a_deletion_is_announced_as_expired_only_when_ttl_made_it(identity: Any, kind: str) -> None:
    extra = {"userIdentity": identity} if identity else {}
    notifier = InMemoryNotifier()
    producer(notifier=notifier).handle(batch(record("REMOVE", old=item("K", value={"N": "1"}), **extra)))
    [message] = notifier.messages
    assert message["MessageAttributes"]["changeKind"]["StringValue"] == kind


def test_change_kinds_of_creation_and_update() -> None:
    notifier = InMemoryNotifier()
    producer(notifier=notifier).handle(
        batch(
            record("INSERT", new=item("K", value={"N": "1"}), event_id="a", sequence="1"),
            record("MODIFY", item("K", value={"N": "1"}), item("K", value={"N": "2"}), event_id="b", sequence="2"),
        )
    )
    kinds = [m["MessageAttributes"]["changeKind"]["StringValue"] for m in notifier.messages]
    assert kinds == ["created", "updated"]


def test_without_partial_failure_reporting_a_batch_not_done_raises_and_names_the_record() -> None:
    repository = InMemoryAuditRepository(unwritable_keys=frozenset({"B"}))
    with pytest.raises(BatchNotWritten, match="first record not fully written has SequenceNumber 200"):
        producer(repository, report=False).handle(batch(created("A", "100"), created("B", "200")))


# -- a chunk at a time ------------------------------------------------------------------------


def chunked(repository: InMemoryAuditRepository, notifier: InMemoryNotifier, size: int = 3) -> AuditProducer:
    return AuditProducer(repository, report_batch_item_failures=True, notifier=notifier, chunk_records=size)


def test_a_batch_is_audited_a_chunk_at_a_time_in_sequence_order() -> None:
    # GIVEN ten records delivered out of order, audited three at a time
    records = [created(f"K{n}", str(100 + n)) for n in range(10)]
    repository, notifier = InMemoryAuditRepository(), InMemoryNotifier()
    response = chunked(repository, notifier).handle(batch(*reversed(records)))
    # THEN every entry is written and announced, in sequence order
    assert reported(response) == []
    assert [m["MessageAttributes"]["itemKey"]["StringValue"] for m in notifier.messages] == [f"K{n}" for n in range(10)]


def test_a_failure_in_a_later_chunk_reports_its_record_and_leaves_the_rest_for_the_retry() -> None:
    # GIVEN the record at 107 (the third chunk) cannot be written
    records = [created(f"K{n}", str(100 + n)) for n in range(12)]
    repository, notifier = InMemoryAuditRepository(unwritable_keys=frozenset({"K7"})), InMemoryNotifier()
    # WHEN the batch is handled three records at a time
    response = chunked(repository, notifier).handle(batch(*records))
    # THEN Lambda resumes from 107; what came before is written and announced, nothing after is announced
    assert reported(response) == ["107"]
    assert notifier.announced_ids() == {entry_id(f"K{n}-{100 + n}") for n in range(7)}
    assert entry_id("K11-111") not in repository.entries  # its chunk was never started


def test_a_record_delivered_twice_across_chunks_is_audited_once() -> None:
    twice = created("K2", "102")
    records = [created("K0", "100"), created("K1", "101"), twice, dict(twice), created("K3", "103")]
    notifier = InMemoryNotifier()
    response = chunked(InMemoryAuditRepository(), notifier).handle(batch(*records))
    assert reported(response) == [] and len(notifier.messages) == 4


def test_memory_stays_bounded_by_a_chunk_whatever_the_batch_size() -> None:
    # GIVEN batches of 1,000 and 4,000 records (one chunk, and four), entries kept nowhere
    from bench.workload import event as workload_event

    class Sink(InMemoryAuditRepository):
        def save(self, entries: Any) -> Any:
            return super().save([])

    def peak(records: int) -> int:
        event = workload_event(records, seed=3)
        producer = AuditProducer(Sink(), chunk_records=1000)
        tracemalloc.start()
        try:
            producer.handle(event)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    # THEN four times the records take far less than four times the memory: one chunk is alive at once
    assert peak(4000) < 1.5 * peak(1000)


def test_a_poison_record_with_no_sequence_number_that_cannot_be_dead_lettered_fails_the_whole_batch() -> None:
    # GIVEN an event with no Records list (poison with no sequence number), and a queue that will not take it
    dead_letters = InMemoryDeadLetters(failing_event_ids=frozenset({None}))  # type: ignore[arg-type]
    # WHEN it is handled, even where partial failures are reported
    with pytest.raises(BatchNotWritten, match="no readable SequenceNumber could not be dead-lettered"):
        producer(dead_letters=dead_letters, report=True).handle({"records": []})
    # THEN nothing was acknowledged: Lambda retries the whole batch
