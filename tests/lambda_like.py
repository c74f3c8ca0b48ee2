"""Lambda's redelivery of a shard, for fault tests: checkpoint from batchItemFailures, bisect on error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Invoke = Callable[[dict[str, Any]], Any]


class Redelivery:
    """Delivers records in order until every one is acknowledged, the way an event source mapping does.

    On ``batchItemFailures`` it resumes from the lowest named sequence number; on a function error
    it bisects the batch (``BisectBatchOnFunctionError``) and delivers each half. ``budget`` bounds
    the invocations so that a bug shows as a failure, not a hang.
    """

    def __init__(self, invoke: Invoke, batch_size: int, budget: int = 5000) -> None:
        self.invoke = invoke
        self.batch_size = batch_size
        self.budget = budget
        self.invocations = 0
        self.errors = 0
        self.partial = 0

    def run(self, records: list[dict[str, Any]]) -> None:
        for start in range(0, len(records), self.batch_size):
            self._deliver(records[start : start + self.batch_size])

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        while batch:
            self.invocations += 1
            assert self.invocations <= self.budget, "records were never acknowledged"
            try:
                response = self.invoke({"Records": batch})
            except Exception:
                self.errors += 1
                if len(batch) > 1:
                    middle = len(batch) // 2
                    self._deliver(batch[:middle])
                    self._deliver(batch[middle:])
                    return
                continue
            failures = (response or {}).get("batchItemFailures") or []
            if not failures:
                return
            self.partial += 1
            position = {r["dynamodb"]["SequenceNumber"]: i for i, r in enumerate(batch)}
            batch = batch[min(position[f["itemIdentifier"]] for f in failures) :]
