"""One batch of stream records -> written audit entries and the response Lambda acts on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chalicelib.audit_repository import AuditRepository, SaveResult
from chalicelib.changes import BatchPlan, RecordChanges, Rejected, plan_batch
from chalicelib.errors import BatchNotWritten
from chalicelib.notifications import NoNotifier, Notifier
from chalicelib.observability import logger


@dataclass
class AuditProducer:
    """Audits a batch: poison records set aside, entries written, failures reported or raised."""

    repository: AuditRepository
    report_batch_item_failures: bool = False
    notifier: Notifier = field(default_factory=NoNotifier)

    def handle(self, event: Any) -> dict[str, list[dict[str, str]]]:
        """Audit one Lambda event; return the batch response (``batchItemFailures``)."""
        plan = plan_batch(event)
        for rejected in plan.rejected:
            self._set_aside(rejected)
        for event_id in plan.duplicates:
            logger.warning("record delivered twice in one batch; audited once", extra={"eventID": event_id})
        saved = self.repository.save(plan.entries)
        self._set_aside_refused(plan, saved)
        written = self._done(plan.records, saved.unwritten)
        # notify only of records that are completely written: the rest comes round again
        published = self.notifier.publish(
            [e for changes in written for e in changes.entries if e["id"]["S"] not in saved.rejected]
        )
        done = self._done(written, published.unpublished)
        failed = plan.records[len(done)].sequence_number if len(done) < len(plan.records) else None
        logger.info(
            "batch audited",
            extra={
                "records": len(plan.records) + len(plan.rejected) + len(plan.duplicates),
                "entries": sum(len(changes.entries) for changes in plan.records),
                "poisonRecords": len(plan.rejected) + len(saved.rejected),
                "writeCalls": saved.write_calls,
                "retriedItems": saved.retried_items,
                "unwrittenEntries": len(saved.unwritten),
                "publishCalls": published.publish_calls,
                "unpublishedEntries": len(published.unpublished),
            },
        )
        if failed is None:
            return {"batchItemFailures": []}
        message = (
            f"{len(saved.unwritten)} audit entries were not written and "
            f"{len(published.unpublished)} not published; "
            f"first record not fully written has SequenceNumber {failed}"
        )
        if self.report_batch_item_failures:
            logger.warning(message, extra={"sequenceNumber": failed})
            return {"batchItemFailures": [{"itemIdentifier": failed}]}
        raise BatchNotWritten(message)

    def _set_aside(self, rejected: Rejected) -> None:
        logger.error(
            "poison record skipped: " + rejected.reason,
            extra={
                "eventID": rejected.event_id,
                "sequenceNumber": rejected.sequence_number,
                "reason": rejected.reason,
            },
        )

    def _set_aside_refused(self, plan: BatchPlan, saved: SaveResult) -> None:
        if not saved.rejected:
            return
        for changes in plan.records:
            reasons = [
                saved.rejected[e["id"]["S"]] for e in changes.entries if e["id"]["S"] in saved.rejected
            ]
            if reasons:
                self._set_aside(
                    Rejected(reasons[0], changes.record, changes.event_id, changes.sequence_number)
                )

    @staticmethod
    def _done(records: list[RecordChanges], missing: set[str]) -> list[RecordChanges]:
        """The leading records (in sequence order) none of whose entries is in ``missing``."""
        if not missing:
            return records
        for position, changes in enumerate(records):
            if any(entry["id"]["S"] in missing for entry in changes.entries):
                return records[:position]
        return records
