"""One batch of stream records -> written audit entries and the response Lambda acts on.

A record is *done* when all its entries are written and announced, and (with DIGEST_BUCKET) listed
in the batch's digest, written last (a poison record: when it is dead-lettered). Lambda must not
move past a record that is not done, so the batch reports the lowest sequence number not done,
or raises where partial failures are not reported.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from chalicelib.audit.dead_letters import DeadLetters, NoDeadLetters
from chalicelib.audit.digests import NO_DIGESTS, DigestLine, DigestWriter, digest_line, digests_of
from chalicelib.audit.entries import Entry, id_of
from chalicelib.audit.notifications import NoNotifier, Notifier, PublishResult
from chalicelib.audit.plan import CHUNK_RECORDS, Poison, RecordChanges, in_chunks, plan_batch
from chalicelib.audit.redaction import NO_REDACTION, Redactor
from chalicelib.audit.repository import AuditRepository, SaveResult
from chalicelib.audit.routing import by_table
from chalicelib.aws_calls import CallFailed
from chalicelib.observability import count, dimension, invocation, iterator_age_ms, logger
from chalicelib.settings import DEFAULT_ACTOR_ATTRIBUTE, AuditedTable

BatchResponse = dict[str, list[dict[str, str]]]


class BatchNotWritten(RuntimeError):
    """Some records of the batch are not done; raised so that Lambda retries the batch."""


@dataclass
class BatchOutcome:
    """What became of one batch, counted over its chunks."""

    records: int = 0
    entries: int = 0
    duplicates: int = 0
    saved: SaveResult = field(default_factory=SaveResult)
    poison: list[Poison] = field(default_factory=list)  # found when planning, or refused by DynamoDB
    not_dead_lettered: list[Poison] = field(default_factory=list)
    dead_lettered: int = 0
    published: PublishResult = field(default_factory=PublishResult)
    first_unfinished: str | None = None  # the first record, in sequence order, not written and announced
    oldest_change: float | None = None
    tables: set[str] = field(default_factory=set)  # the audited tables the batch held records of
    digested: list[DigestLine] = field(default_factory=list)  # every entry written, for the batch's digest
    first_digested: str | None = None  # the lowest sequence number of a record whose entries are digested
    digests_written: int = 0
    digest_failure: str | None = None  # why the batch's digest was not written

    @property
    def first_not_done(self) -> str | None:
        """The sequence number Lambda must resume from: the lowest of a record not done."""
        not_done = [poison.sequence_number for poison in self.not_dead_lettered if poison.sequence_number]
        if self.first_unfinished is not None:
            not_done.append(self.first_unfinished)
        return min(not_done, key=int, default=None)


@dataclass
class AuditProducer:
    """Audits a batch: poison records set aside, entries written and announced, failures reported."""

    repository: AuditRepository
    report_batch_item_failures: bool = False
    notifier: Notifier = field(default_factory=NoNotifier)
    dead_letters: DeadLetters = field(default_factory=NoDeadLetters)
    redactor: Redactor = NO_REDACTION
    actor_attribute: str | None = DEFAULT_ACTOR_ATTRIBUTE
    chunk_records: int = CHUNK_RECORDS
    # Every audited table with its trail (AUDITED_TABLES); empty: one table, whose trail is ``repository``.
    trails: Mapping[AuditedTable, AuditRepository] = field(default_factory=dict)
    digests: DigestWriter = NO_DIGESTS  # DIGEST_BUCKET: one digest of the written entries a batch

    def __post_init__(self) -> None:
        if self.digests.enabled and not self.trails:
            raise ValueError("a producer that writes digests needs its trails (AUDITED_TABLES): a digest names each")

    def handle(self, event: Any, context: Any = None) -> BatchResponse:
        """Audit one Lambda event; return the batch response (``batchItemFailures``) or raise."""
        with invocation(context):
            outcome = self.audit(event)
            self._seal(outcome)
            _report(outcome)
            return self._respond(outcome)

    def audit(self, event: Any) -> BatchOutcome:
        """Every step of a batch but the response, a chunk of records at a time, in sequence order.

        Only one chunk's entries are alive at once, so memory stays bounded whatever the batch
        size. Once a chunk is not fully done, the chunks after it are left for Lambda's retry.
        """
        outcome = BatchOutcome(records=_record_count(event))
        seen: set[str] = set()
        routed: list[tuple[AuditedTable | None, Any]] = (
            list(by_table(event, list(self.trails))) if self.trails else [(None, event)]
        )
        for table, part in routed:
            trail = self.repository if table is None else self.trails[table]
            for chunk in in_chunks(part, self.chunk_records):
                if not self._audit_chunk(chunk, trail, table, seen, outcome):
                    return outcome
        return outcome

    def _audit_chunk(
        self, chunk: Any, trail: AuditRepository, table: AuditedTable | None, seen: set[str], outcome: BatchOutcome
    ) -> bool:
        """Redact, plan, write, dead-letter, publish one chunk; False once a record of it is not done.

        Its plan lives only in here, so its entries are gone before the next chunk is built.
        """
        plan = plan_batch(self.redactor.event(chunk), self.actor_attribute, seen)  # no secret in plain from here
        for event_id in plan.duplicates:
            logger.warning("record delivered twice in one batch; audited once", extra={"eventID": event_id})
        saved = trail.save(plan.entries)
        poison = plan.poison + _refused_records(plan.records, saved.refused)
        if table is not None:
            poison = [replace(record, table=table.source) for record in poison]
            outcome.tables.add(table.source)
        for record in poison:
            logger.error(
                "poison record skipped: " + record.reason,
                extra={
                    "eventID": record.event_id,
                    "sequenceNumber": record.sequence_number,
                    "reason": record.reason,
                    "tableName": record.table,
                },
            )
        not_dead_lettered = self.dead_letters.send(poison)
        # only records whose entries are all written are announced; the rest comes round again
        written = _leading_records_without(plan.records, saved.unwritten)
        published = self.notifier.publish(
            _entries_of(written, excluding=saved.refused.keys()), table.source if table else None
        )
        announced = _leading_records_without(written, published.unpublished)
        if self.digests.enabled and table is not None and written:
            digested = _entries_of(written, excluding=saved.refused.keys())  # refused for good: not in the trail
            outcome.digested += [digest_line(entry, table.trail) for entry in digested]
            if digested:
                first = min((changes.sequence_number for changes in written if changes.entries), key=int)
                outcome.first_digested = min(first, outcome.first_digested or first, key=int)

        outcome.entries += sum(len(changes.entries) for changes in plan.records)
        outcome.duplicates += len(plan.duplicates)
        outcome.saved.add(saved)
        outcome.poison += poison
        outcome.not_dead_lettered += not_dead_lettered
        outcome.dead_lettered += len(poison) - len(not_dead_lettered) if self.dead_letters.enabled else 0
        outcome.published.add(published)
        oldest = plan.oldest_change
        if oldest is not None:
            outcome.oldest_change = min(oldest, outcome.oldest_change or oldest)
        if len(announced) < len(plan.records):
            outcome.first_unfinished = plan.records[len(announced)].sequence_number
            return False
        return True

    def _seal(self, outcome: BatchOutcome) -> None:
        """Write the batch's digest of its written entries; where it fails, nothing digested is done."""
        if not outcome.digested:
            return
        digests = digests_of(outcome.digested)
        try:
            self.digests.write(digests)
        except CallFailed as error:  # a ConfigurationError (no bucket, no permission) fails the invocation
            outcome.digest_failure = f"{type(error).__name__}: {error}"
            first = outcome.first_digested
            if first is not None:  # its entries are rewritten on the retry, harmlessly, and digested then
                outcome.first_unfinished = min(first, outcome.first_unfinished or first, key=int)
            return
        outcome.digests_written = len(digests)

    def _respond(self, outcome: BatchOutcome) -> BatchResponse:
        if any(poison.sequence_number is None for poison in outcome.not_dead_lettered):
            # no sequence number to report it by, so the whole batch comes round again (it is not dropped)
            raise BatchNotWritten("a poison record with no readable SequenceNumber could not be dead-lettered")
        failed = outcome.first_not_done
        if failed is None:
            return {"batchItemFailures": []}
        not_dead_lettered = len(outcome.not_dead_lettered)
        message = (
            f"{len(outcome.saved.unwritten)} audit entries were not written and "
            f"{len(outcome.published.unpublished)} not published"
            + (f" and {not_dead_lettered} poison records not dead-lettered" if not_dead_lettered else "")
            + (f" and the batch's digest not written ({outcome.digest_failure})" if outcome.digest_failure else "")
            + f"; first record not fully written has SequenceNumber {failed}"
        )
        if self.report_batch_item_failures:
            logger.warning(message, extra={"sequenceNumber": failed})
            return {"batchItemFailures": [{"itemIdentifier": failed}]}
        raise BatchNotWritten(message)


def _refused_records(records: list[RecordChanges], refused: dict[str, str]) -> list[Poison]:
    """Records with an entry DynamoDB refused: poison too, found only at write time."""
    poison = []
    for changes in records:
        reasons = [refused[id_of(entry)] for entry in changes.entries if id_of(entry) in refused]
        if reasons:
            poison.append(Poison(reasons[0], changes.record, changes.event_id, changes.sequence_number))
    return poison


def _leading_records_without(records: list[RecordChanges], missing: set[str]) -> list[RecordChanges]:
    """The leading records (in sequence order) none of whose entries is in ``missing``."""
    for index, changes in enumerate(records):
        if any(id_of(entry) in missing for entry in changes.entries):
            return records[:index]
    return records


def _entries_of(records: list[RecordChanges], excluding: Container[str]) -> list[Entry]:
    return [entry for changes in records for entry in changes.entries if id_of(entry) not in excluding]


def _record_count(event: Any) -> int:
    records = event.get("Records") if isinstance(event, dict) else None
    return len(records) if isinstance(records, list) else 1  # an event with no Records list is one poison


def _report(outcome: BatchOutcome) -> None:
    """One log line and the CloudWatch metrics of a batch."""
    saved, published = outcome.saved, outcome.published
    records, entries = outcome.records, outcome.entries
    if len(outcome.tables) == 1:  # a batch is one stream, so one table: its metrics say which
        dimension("table", next(iter(outcome.tables)))
    age = iterator_age_ms(outcome.oldest_change)
    for name, value in (
        ("Records", records),
        ("Entries", entries),
        ("WriteCalls", saved.write_calls),
        ("UnprocessedItems", saved.retried_items),
        ("PoisonRecords", len(outcome.poison)),
        ("DeadLettered", outcome.dead_lettered),
        ("Notifications", published.published),
        ("BatchFailures", 1 if outcome.first_not_done else 0),
        ("Digests", outcome.digests_written),
    ):
        count(name, value)
    logger.info(
        "batch audited",
        extra={
            "records": records,
            "entries": entries,
            "poisonRecords": len(outcome.poison),
            "writeCalls": saved.write_calls,
            "retriedItems": saved.retried_items,
            "unwrittenEntries": len(saved.unwritten),
            "publishCalls": published.publish_calls,
            "unpublishedEntries": len(published.unpublished),
            "deadLetterFailures": len(outcome.not_dead_lettered),
            "digests": outcome.digests_written,
            "iteratorAgeMs": None if age is None else round(age),
        },
    )
