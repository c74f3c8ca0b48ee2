"""One batch of stream records -> written audit entries and the response Lambda acts on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chalicelib.audit_repository import AuditRepository, SaveResult
from chalicelib.changes import BatchPlan, RecordChanges, Rejected, plan_batch
from chalicelib.dead_letters import DeadLetters, NoDeadLetters
from chalicelib.errors import BatchNotWritten, ConfigurationError
from chalicelib.notifications import NoNotifier, Notifier
from chalicelib.observability import count, invocation, iterator_age_ms, logger

BatchResponse = dict[str, list[dict[str, str]]]


@dataclass
class AuditProducer:
    """Audits a batch: poison records set aside, entries written and announced, failures reported."""

    repository: AuditRepository
    report_batch_item_failures: bool = False
    notifier: Notifier = field(default_factory=NoNotifier)
    dead_letters: DeadLetters = field(default_factory=NoDeadLetters)

    def handle(self, event: Any, context: Any = None) -> BatchResponse:
        """Audit one Lambda event; return the batch response (``batchItemFailures``) or raise."""
        with invocation(context):
            try:
                return self._handle(event)
            except ConfigurationError as error:
                # one line that says what is missing; Lambda's own report follows with the same message
                logger.error(f"misconfigured: {error}", extra={"reason": str(error)})
                raise

    def _handle(self, event: Any) -> BatchResponse:
        plan = plan_batch(event)
        for event_id in plan.duplicates:
            logger.warning("record delivered twice in one batch; audited once", extra={"eventID": event_id})
        saved = self.repository.save(plan.entries)
        poison = plan.rejected + self._refused(plan, saved)
        for rejected in poison:
            logger.error(
                "poison record skipped: " + rejected.reason,
                extra={
                    "eventID": rejected.event_id,
                    "sequenceNumber": rejected.sequence_number,
                    "reason": rejected.reason,
                },
            )
        unsent = self.dead_letters.send(poison)
        written = _leading_done(plan.records, saved.unwritten)
        # only records whose entries are all written are announced; the rest comes round again
        published = self.notifier.publish(
            [e for changes in written for e in changes.entries if e["id"]["S"] not in saved.rejected]
        )
        done = _leading_done(written, published.unpublished)

        not_done = [r.sequence_number for r in unsent if r.sequence_number is not None]
        if len(done) < len(plan.records):
            not_done.append(plan.records[len(done)].sequence_number)
        failed = min(not_done, key=int) if not_done else None

        entries = sum(len(changes.entries) for changes in plan.records)
        age = iterator_age_ms(plan.oldest_change)
        for name, value in (
            ("Records", len(plan.records) + len(plan.rejected) + len(plan.duplicates)),
            ("Entries", entries),
            ("WriteCalls", saved.write_calls),
            ("UnprocessedItems", saved.retried_items),
            ("PoisonRecords", len(poison)),
            ("DeadLettered", len(poison) - len(unsent) if self.dead_letters.enabled else 0),
            ("Notifications", published.published),
            ("BatchFailures", 1 if failed else 0),
        ):
            count(name, value)
        logger.info(
            "batch audited",
            extra={
                "records": len(plan.records) + len(plan.rejected) + len(plan.duplicates),
                "entries": entries,
                "poisonRecords": len(poison),
                "writeCalls": saved.write_calls,
                "retriedItems": saved.retried_items,
                "unwrittenEntries": len(saved.unwritten),
                "publishCalls": published.publish_calls,
                "unpublishedEntries": len(published.unpublished),
                "deadLetterFailures": len(unsent),
                "iteratorAgeMs": None if age is None else round(age),
            },
        )
        if failed is None:
            return {"batchItemFailures": []}
        message = (
            f"{len(saved.unwritten)} audit entries were not written and "
            f"{len(published.unpublished)} not published"
            + (f" and {len(unsent)} poison records not dead-lettered" if unsent else "")
            + f"; first record not fully written has SequenceNumber {failed}"
        )
        if self.report_batch_item_failures:
            logger.warning(message, extra={"sequenceNumber": failed})
            return {"batchItemFailures": [{"itemIdentifier": failed}]}
        raise BatchNotWritten(message)

    @staticmethod
    def _refused(plan: BatchPlan, saved: SaveResult) -> list[Rejected]:
        """Records with an entry DynamoDB refused: poison too, found only at write time."""
        if not saved.rejected:
            return []
        refused = []
        for changes in plan.records:
            reasons = [saved.rejected[e["id"]["S"]] for e in changes.entries if e["id"]["S"] in saved.rejected]
            if reasons:
                refused.append(Rejected(reasons[0], changes.record, changes.event_id, changes.sequence_number))
        return refused


def _leading_done(records: list[RecordChanges], missing: set[str]) -> list[RecordChanges]:
    """The leading records (in sequence order) none of whose entries is in ``missing``."""
    if not missing:
        return records
    for position, changes in enumerate(records):
        if any(entry["id"]["S"] in missing for entry in changes.entries):
            return records[:position]
    return records
