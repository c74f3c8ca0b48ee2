"""A local stand-in for Lambda's DynamoDB event source mappings, one per audited stream.

Reads every shard of every stream it is given (from TRIM_HORIZON, or after its checkpoint),
batches records of one shard up to the function's ``batch_size`` and batching window, shapes them
as Lambda does (each with its own stream's ``eventSourceARN``, by which the function routes it to
its table's trail), invokes the handler, honours ``batchItemFailures`` (retrying from the lowest
failed sequence number, with backoff, a bounded number of times, then giving up on what is left:
it logs it and, given a destination, writes the record Lambda's S3 on-failure destination would
receive), and checkpoints by sequence number, per stream and shard. It never creates a moto event
source mapping (that needs Docker and empties the stream without it).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.audit.routing import source_table
from config_audit.recover import FAILURE_RECORD_PREFIX
from local.stream import get_records, shard_ids, to_lambda_record

log = logging.getLogger("local.poller")

Invoke = Callable[[dict[str, Any]], Any]
Shard = tuple[str, str]  # (stream ARN, shard ID): moto gives every stream's shard the same ID
MAX_POLL_WAIT = 5.0  # seconds between polls that keep failing (moto gone, say)
BATCH_ITEM_FAILURES = "batchItemFailures"  # the reason of a retry the function asked for, not an error of it


class Checkpoint:
    """The last sequence number handled per stream and shard; in memory, or in a JSON file to resume from."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.positions: dict[str, dict[str, str]] = {}  # stream ARN -> shard ID -> sequence number
        if path is not None and path.exists():
            self.positions = json.loads(path.read_text())

    def get(self, shard: Shard) -> str | None:
        stream_arn, shard_id = shard
        return self.positions.get(stream_arn, {}).get(shard_id)

    def set(self, shard: Shard, sequence_number: str) -> None:
        stream_arn, shard_id = shard
        self.positions.setdefault(stream_arn, {})[shard_id] = sequence_number
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.positions))


@dataclass(frozen=True)
class GaveUp:
    """A batch the poller gives up on, and what Lambda knows of it when it does."""

    stream_arn: str
    shard_id: str
    records: list[dict[str, Any]]
    attempts: int
    function_error: bool  # the last attempt raised (rather than reporting batchItemFailures)


def _iso(moment: dt.datetime) -> str:
    """A time as Lambda writes it in a DynamoDB failure record: UTC, milliseconds, Z."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _arrival(record: dict[str, Any], otherwise: dt.datetime) -> str:
    created = record.get("dynamodb", {}).get("ApproximateCreationDateTime") if isinstance(record, dict) else None
    if isinstance(created, int | float) and not isinstance(created, bool):
        return _iso(dt.datetime.fromtimestamp(created, dt.UTC))
    return _iso(otherwise)  # a record the stream shaped badly still has its batch written


def failure_record(gave_up: GaveUp, function_arn: str, now: dt.datetime) -> dict[str, Any]:
    """The JSON Lambda writes into an S3 on-failure destination for a DynamoDB stream batch it discards:
    the invocation's metadata and, for S3 alone, the whole payload (Lambda's docs, "Retain discarded
    records for a DynamoDB event source")."""
    first, last = gave_up.records[0], gave_up.records[-1]
    response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if gave_up.function_error:
        response["functionError"] = "Unhandled"
    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": gave_up.attempts,
        },
        "responseContext": response,
        "version": "1.0",
        "timestamp": _iso(now),
        "DDBStreamBatchInfo": {
            "shardId": gave_up.shard_id,
            "startSequenceNumber": first["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": last["dynamodb"]["SequenceNumber"],
            "approximateArrivalOfFirstRecord": _arrival(first, now),
            "approximateArrivalOfLastRecord": _arrival(last, now),
            "batchSize": len(gave_up.records),
            "streamArn": gave_up.stream_arn,
        },
        "payload": {"Records": gave_up.records},
    }


def failure_record_key(stream_arn: str, shard_id: str, now: dt.datetime) -> str:
    """Lambda's key for it: aws/lambda/<mapping UUID>/<shard ID>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<UUID>;
    the local mapping's UUID is derived from its stream, so one stream's records share a prefix."""
    mapping = uuid.uuid5(uuid.NAMESPACE_URL, stream_arn)
    return f"{FAILURE_RECORD_PREFIX}{mapping}/{shard_id}/{now:%Y/%m/%d}/{now:%Y-%m-%dT%H.%M.%S}-{uuid.uuid4()}"


class S3Destination:
    """Lambda's S3 on-failure destination: each batch given up on goes into the bucket whole."""

    def __init__(self, s3: Any, bucket: str, function_arn: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.function_arn = function_arn

    def send(self, gave_up: GaveUp) -> str:
        """Write the batch's failure record; its s3:// URL."""
        now = dt.datetime.now(dt.UTC)
        key = failure_record_key(gave_up.stream_arn, gave_up.shard_id, now)
        body = json.dumps(failure_record(gave_up, self.function_arn, now)).encode()
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")
        return f"s3://{self.bucket}/{key}"


@dataclass
class PollerStats:
    batches: int = 0
    records: int = 0
    entries: int = 0
    retries: int = 0
    gave_up: list[str] = field(default_factory=list)


class StreamPoller:
    """Feeds streams to a handler the way Lambda's event source mappings do, one mapping per stream."""

    def __init__(
        self,
        streams: Any,
        stream_arns: Sequence[str],
        invoke: Invoke,
        *,
        batch_size: int = 100,
        batching_window: float = 0.0,
        poll_interval: float = 0.1,
        max_attempts: int = 5,
        backoff_seconds: float = 0.2,
        checkpoint: Checkpoint | None = None,
        count_entries: Callable[[dict[str, Any]], int] | None = None,
        destination: S3Destination | None = None,
    ) -> None:
        if isinstance(stream_arns, str):  # a str is a Sequence[str] too: one ARN read as many
            raise TypeError("stream_arns is a sequence of stream ARNs, not one ARN")
        self.streams = streams
        self.stream_arns = tuple(stream_arns)
        self.invoke = invoke
        self.batch_size = batch_size
        self.batching_window = batching_window
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.checkpoint = checkpoint or Checkpoint()
        self.count_entries = count_entries
        self.destination = destination  # where a batch given up on is kept, as Lambda's on-failure destination
        self.stats = PollerStats()
        self._iterators: dict[Shard, str | None] = {}
        self._buffers: dict[Shard, list[dict[str, Any]]] = {}
        self._first_buffered: dict[Shard, float] = {}
        self.stop_event = threading.Event()

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> None:
        """Poll until ``stop()``; a failed poll is logged in one line and retried, as Lambda's is."""
        failed = 0  # polls failed in a row: the wait between them doubles, up to MAX_POLL_WAIT
        while not self.stop_event.is_set():
            try:
                busy = self.poll_once()
                failed = 0
            except Exception as error:  # the poller must outlive a bad poll; the next one retries
                failed += 1
                log.warning("poll failed (%s: %.300s); retrying", type(error).__name__, " ".join(str(error).split()))
                busy = False
            if not busy:
                self.stop_event.wait(min(self.poll_interval * 2 ** min(failed, 10), MAX_POLL_WAIT))

    def stop(self) -> None:
        self.stop_event.set()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="stream-poller", daemon=True)
        thread.start()
        return thread

    def poll_once(self) -> bool:
        """Read what is new on every shard of every stream and deliver the batches that are due; True if any."""
        delivered = False
        for stream_arn in self.stream_arns:
            for shard_id in shard_ids(self.streams, stream_arn):
                shard = (stream_arn, shard_id)
                self._read(shard)
                delivered |= self._deliver_due(shard)
        return delivered

    # -- reading ----------------------------------------------------------------------------

    def _iterator(self, shard: Shard) -> str | None:
        if shard not in self._iterators:
            stream_arn, shard_id = shard
            after = self.checkpoint.get(shard)
            position: dict[str, str] = (
                {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after}
                if after
                else {"ShardIteratorType": "TRIM_HORIZON"}
            )
            self._iterators[shard] = self.streams.get_shard_iterator(
                StreamArn=stream_arn, ShardId=shard_id, **position
            )["ShardIterator"]
        return self._iterators[shard]

    def _read(self, shard: Shard) -> None:
        iterator = self._iterator(shard)
        if iterator is None:  # closed shard, fully read
            return
        page = get_records(self.streams, iterator)
        self._iterators[shard] = page.get("NextShardIterator")
        if page["Records"]:
            buffer = self._buffers.setdefault(shard, [])
            if not buffer:
                self._first_buffered[shard] = time.monotonic()
            stream_arn, _ = shard
            buffer.extend(to_lambda_record(record, stream_arn) for record in page["Records"])

    # -- delivering -------------------------------------------------------------------------

    def _deliver_due(self, shard: Shard) -> bool:
        """Deliver the shard's batches that are full or have waited out the window: a batch never mixes shards."""
        buffer = self._buffers.get(shard, [])
        delivered = False
        while buffer:
            waited = time.monotonic() - self._first_buffered.get(shard, 0.0)
            if len(buffer) < self.batch_size and waited < self.batching_window:
                break
            batch, buffer[:] = buffer[: self.batch_size], buffer[self.batch_size :]
            self._first_buffered[shard] = time.monotonic()
            self._deliver(batch, shard)
            self.checkpoint.set(shard, batch[-1]["dynamodb"]["SequenceNumber"])
            delivered = True
        return delivered

    def _deliver(self, batch: list[dict[str, Any]], shard: Shard) -> None:
        """Invoke until the batch is done or out of attempts; then give up on what is left."""
        pending = batch
        entries = self.count_entries({"Records": batch}) if self.count_entries else None
        reason = ""
        for attempt in range(1, self.max_attempts + 1):
            failed_at, reason = self._invoke(pending)
            if failed_at is None:
                self._log_batch(batch, entries, failures=len(batch) - len(pending), attempt=attempt)
                return
            pending = pending[failed_at:]
            if attempt < self.max_attempts:
                self.stats.retries += 1
                log.warning(
                    "batch failed at sequence number %s (%s); retrying %d records, attempt %d of %d",
                    pending[0]["dynamodb"]["SequenceNumber"],
                    reason,
                    len(pending),
                    attempt + 1,
                    self.max_attempts,
                )
                time.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        gave_up = [record["dynamodb"]["SequenceNumber"] for record in pending]
        self.stats.gave_up.extend(gave_up)
        log.error(
            "gave up on %d records after %d attempts: sequence numbers %s .. %s",
            len(gave_up),
            self.max_attempts,
            gave_up[0],
            gave_up[-1],
        )
        self._log_batch(batch, entries, failures=len(gave_up), attempt=self.max_attempts)
        if self.destination is not None:
            stream_arn, shard_id = shard
            failed = GaveUp(
                stream_arn, shard_id, pending, self.max_attempts, not reason.startswith(BATCH_ITEM_FAILURES)
            )
            try:
                log.error("kept them, as Lambda's on-failure destination would, in %s", self.destination.send(failed))
            except Exception as error:  # the poller goes on, as Lambda does when its destination fails
                log.error("could not keep the records given up on (%s: %.300s)", type(error).__name__, error)

    def _invoke(self, records: list[dict[str, Any]]) -> tuple[int | None, str]:
        """(index of the first record to redo, why), or (None, "") when the batch is done."""
        try:
            response = self.invoke({"Records": records})
        except Exception as error:  # Lambda: a function error retries the whole batch
            return 0, f"{type(error).__name__}: {error}"
        failures = response.get("batchItemFailures") if isinstance(response, dict) else None
        if not failures:
            return None, ""
        positions = {r["dynamodb"]["SequenceNumber"]: i for i, r in enumerate(records)}
        named = [positions.get(f.get("itemIdentifier")) for f in failures]
        if any(position is None for position in named):  # Lambda too retries all of it then
            return 0, f"{BATCH_ITEM_FAILURES} names a record not in the batch"
        return min(p for p in named if p is not None), BATCH_ITEM_FAILURES

    def _log_batch(self, batch: list[dict[str, Any]], entries: int | None, failures: int, attempt: int) -> None:
        """The batch's progress line, then its count in ``stats``: a batch counted is a batch whose
        line is out, so a reader waiting on the counts prints after it (make demo's tables)."""
        created = batch[-1]["dynamodb"].get("ApproximateCreationDateTime")
        lag_ms = (time.time() - created) * 1000 if isinstance(created, (int, float)) else float("nan")
        log.info(
            "batch of %d records from %s -> %s entries, %d failures, %d attempts, lag %.0f ms",
            len(batch),
            source_table(batch[-1]) or "?",
            "?" if entries is None else entries,
            failures,
            attempt,
            lag_ms,
        )
        self.stats.batches += 1
        self.stats.records += len(batch)
        self.stats.entries += entries or 0
