"""actor_recorder: CloudTrail's record of each write call on the audited table, kept in AuditActors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.actors.cloudtrail import Unattributable, calls_in
from chalicelib.actors.repository import ActorRepository
from chalicelib.audit.records import KEY_ATTRIBUTE
from chalicelib.observability import logger


class CallsNotRecorded(RuntimeError):
    """AuditActors would not take every call; raised so that EventBridge delivers the event again."""


@dataclass
class ActorRecorder:
    repository: ActorRepository
    tables: str | tuple[str, ...]  # the audited tables (AUDITED_TABLES): only calls on them are recorded
    key_attribute: str = KEY_ATTRIBUTE

    def handle(self, event: Any) -> dict[str, int]:
        """Record the calls an event names; an event that names none is logged and skipped."""
        try:
            calls = calls_in(event, self.tables, self.key_attribute)
        except Unattributable as why:
            detail = event.get("detail") if isinstance(event, dict) else None
            event_id = detail.get("eventID") if isinstance(detail, dict) else None
            logger.info(f"CloudTrail event skipped: {why}", extra={"eventID": event_id, "reason": str(why)})
            return {"recorded": 0}
        left = self.repository.record(calls)
        if left:
            raise CallsNotRecorded(f"{len(left)} of {len(calls)} calls were not recorded; EventBridge retries")
        logger.info("calls recorded", extra={"eventID": calls[0].event_id, "keys": len(calls), "call": calls[0].call})
        return {"recorded": len(calls)}
