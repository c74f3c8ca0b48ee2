"""The local poller behaves like Lambda's event source mapping (against moto's real stream)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from local.poller import Checkpoint, StreamPoller
from tests.conftest import Stack


class Recorder:
    """A function that records what it was given and answers from a script."""

    def __init__(self, answers: list[Any] | None = None) -> None:
        self.batches: list[list[str]] = []
        self.answers = answers or []

    def __call__(self, event: dict[str, Any]) -> Any:
        self.batches.append([r["dynamodb"]["SequenceNumber"] for r in event["Records"]])
        answer = self.answers.pop(0) if self.answers else {"batchItemFailures": []}
        if isinstance(answer, Exception):
            raise answer
        return answer(event) if callable(answer) else answer


def poller(stack: Stack, invoke: Recorder, **options: Any) -> StreamPoller:
    options.setdefault("backoff_seconds", 0.0)
    return StreamPoller(stack.streams, stack.stream_arn, invoke, **options)


def test_batches_follow_the_functions_batch_size_in_order(stack: Stack) -> None:
    for number in range(250):
        stack.put(f"K{number}", value=number)
    invoke = Recorder()
    poller(stack, invoke, batch_size=100).poll_once()
    assert [len(batch) for batch in invoke.batches] == [100, 100, 50]
    flat = [int(s) for batch in invoke.batches for s in batch]
    assert flat == sorted(flat) and len(set(flat)) == 250


def test_records_reach_the_function_in_lambdas_shape(stack: Stack) -> None:
    stack.put("K", value=1)
    seen: list[dict[str, Any]] = []

    def remember(event: dict[str, Any]) -> dict[str, Any]:
        seen.extend(event["Records"])
        return {"batchItemFailures": []}

    invoke = Recorder([remember])
    poller(stack, invoke).poll_once()
    [record] = seen
    assert record["eventSourceARN"] == stack.stream_arn
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], float)


def test_batch_item_failure_retries_from_the_lowest_failed_record(stack: Stack) -> None:
    for number in range(5):
        stack.put(f"K{number}", value=number)
    first = Recorder()
    poller(stack, first).poll_once()
    sequence = first.batches[0]
    # the function reports records 3 and 2 (out of order) as not done, then succeeds
    invoke = Recorder([{"batchItemFailures": [{"itemIdentifier": sequence[3]}, {"itemIdentifier": sequence[2]}]}])
    fresh = poller(stack, invoke)
    fresh.poll_once()
    assert invoke.batches == [sequence, sequence[2:]]
    assert fresh.stats.retries == 1 and fresh.stats.gave_up == []


def test_function_error_retries_the_whole_batch_then_gives_up_and_says_so(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    stack.put("K", value=1)
    stack.put("L", value=2)
    invoke = Recorder([RuntimeError("boom")] * 10)
    subject = poller(stack, invoke, max_attempts=3)
    subject.poll_once()
    assert len(invoke.batches) == 3 and all(len(b) == 2 for b in invoke.batches)
    assert subject.stats.gave_up == invoke.batches[0]
    assert "gave up on 2 records after 3 attempts" in caplog.text


def test_checkpoint_resumes_after_the_last_handled_record(stack: Stack, tmp_path: Path) -> None:
    stack.put("K", value=1)
    path = tmp_path / "checkpoint.json"
    first = Recorder()
    poller(stack, first, checkpoint=Checkpoint(path)).poll_once()
    stack.put("K", value=2)
    second = Recorder()
    poller(stack, second, checkpoint=Checkpoint(path)).poll_once()
    assert len(first.batches[0]) == 1 and len(second.batches[0]) == 1
    assert int(second.batches[0][0]) > int(first.batches[0][0])


def test_batching_window_holds_a_small_batch_back(stack: Stack) -> None:
    stack.put("K", value=1)
    invoke = Recorder()
    waiting = poller(stack, invoke, batching_window=60.0)
    waiting.poll_once()
    assert invoke.batches == []
    stack.put("K", value=2)
    immediate = poller(stack, Recorder(), batching_window=0.0)
    immediate.poll_once()
    assert immediate.stats.records == 2
