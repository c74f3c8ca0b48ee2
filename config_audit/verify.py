"""`config-audit verify`: every entry of a window checked against the digests that cover it.

An entry is *altered* when its hash differs from the one its digest lists, *removed* when a digest
lists it and the trail does not hold it, *slipped in* when the trail holds it and no digest lists
it, *hidden* when it is as digested but its time index attributes are not what the producer
wrote (`changes` would not show it). Intact: ``N entries verified against M digests`` (exit
status 0); otherwise one line per finding (exit status 3). Only the window's digests are held in
memory (their ids and hashes); the trail is streamed past them.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError

from chalicelib.audit.digests import entry_hash, hour_of
from chalicelib.audit.entries import Entry
from chalicelib.audit.repository import TIME_ORDER, TIME_SHARD, stored, unstored
from chalicelib.settings import AuditedTable, Settings
from config_audit.errors import Answer, NotDone
from config_audit.render import printable
from config_audit.times import now, parse_time
from config_audit.trail import Trail

NOT_INTACT = 3  # the exit status of a trail that is not what its digests say
_LINE_FIELDS = {"id", "modificationTime", "sha256"}  # what verify reads of a digest's entry


@dataclass(frozen=True)
class Window:
    """Entries whose ``modificationTime`` lies in [start, end); None: unbounded on that side."""

    start: str | None = None
    end: str | None = None

    def holds(self, time: str) -> bool:
        return (self.start is None or time >= self.start) and (self.end is None or time < self.end)


@dataclass(frozen=True, slots=True)
class _Listed:
    """What the digests say of one entry."""

    sha256: str
    item_key: str
    time: str
    digest: str  # the digest's object key


@dataclass
class _Check:
    """The findings of one run, and what was verified."""

    verified: int = 0
    digests: set[str] = field(default_factory=set)  # the digests that list an entry of the window
    findings: list[tuple[str, str, str]] = field(default_factory=list)  # (time, id, line)

    def find(self, time: str, id_: str, line: str) -> None:
        self.findings.append((time, id_, printable(line)))


def command(args: argparse.Namespace, trail: Trail, session: dict[str, Any]) -> str | Answer:
    """The CLI's `verify`: --table (default: every audited table), --from and --to (default: all)."""
    current = now()  # one "now" for both bounds; a window's bounds round up to the millisecond and may pass now
    start = parse_time(args.start, current, bound=True) if args.start else None
    end = parse_time(args.end, current, bound=True) if args.end else None
    if start is not None and end is not None and start > end:
        raise NotDone(f"--from {start} is after --to {end}: give the earlier time first")
    settings = trail.settings
    tables = settings.audited_tables if args.table is None else (settings.table(args.table),)
    return verify(settings, trail.dynamodb, boto3.client("s3", **session), tables, Window(start, end))


def verify(settings: Settings, dynamodb: Any, s3: Any, tables: Sequence[AuditedTable], window: Window) -> str | Answer:
    """Check each table's trail in ``window`` against its digests: the one line of an intact
    trail, or an Answer with exit status 3 and a line per finding, oldest first."""
    bucket = settings.digest_bucket
    if bucket is None:
        raise NotDone(
            "DIGEST_BUCKET is not set in the stage's environment_variables: its producer writes no digests, "
            "so there is nothing to verify the trail against"
        )
    check = _Check()
    for table in tables:
        _verify_trail(dynamodb, _Digests(s3, bucket, table.trail), table.trail, window, check)
    if check.findings:
        return Answer("\n".join(line for _, _, line in sorted(check.findings)), NOT_INTACT)
    return f"{check.verified} entries verified against {len(check.digests)} digests"


def _verify_trail(dynamodb: Any, digests: _Digests, trail: str, window: Window, check: _Check) -> None:
    listed = digests.listed(window, check)
    for entry in trail_entries(dynamodb, trail, window):
        id_, key, time = _text(entry, "id"), _text(entry, "itemKey"), _text(entry, "modificationTime")
        expected = listed.pop(id_, None)
        where = f"id {id_} key {_quoted(key)} at {time or '(no time)'} in {trail}"
        if expected is None:
            note = digests.before_first_digest(time)
            check.find(time, id_, f"slipped in: {where}: in no digest{note}")
        elif entry_hash(entry) != expected.sha256:
            check.find(time, id_, f"altered: {where}: its hash differs from digest {expected.digest}")
        elif not _indexed_as_written(entry):
            check.find(
                time,
                id_,
                f"hidden: {where}: its time index attributes are not the ones the producer writes, so "
                "`changes` and GET /changes do not show it (config-audit backfill puts it back)",
            )
        else:
            check.verified += 1
    for id_, gone in listed.items():
        where = f"id {id_} key {_quoted(gone.item_key)} at {gone.time} in {trail}"
        check.find(gone.time, id_, f"removed: {where}: listed in digest {gone.digest}, not in the table")


def _indexed_as_written(item: Entry) -> bool:
    """Whether a trail item carries the time index attributes the repository gives its entry:
    the digest leaves them out (they are derived), so an entry could be hidden from the incident
    view by changing them alone; verify derives them again and compares."""
    written = stored(unstored(item))
    return all(item.get(name) == written.get(name) for name in (TIME_SHARD, TIME_ORDER))


def trail_entries(dynamodb: Any, trail: str, window: Window) -> Iterator[Entry]:
    """Every entry of ``trail`` in ``window``, page by page, in no set order.

    A Scan of the trail (the trail is what is being verified, so no unrelated data is read), not
    the time index: an entry slipped in by hand need not carry the index's attributes, and verify
    must see it all the same.
    """
    scan: dict[str, Any] = {"TableName": trail, "ConsistentRead": True}
    conditions, values = [], {}
    if window.start is not None:
        conditions.append("modificationTime >= :start")
        values[":start"] = {"S": window.start}
    if window.end is not None:
        conditions.append("modificationTime < :end")
        values[":end"] = {"S": window.end}
    if conditions:
        scan["FilterExpression"] = " AND ".join(conditions)
        scan["ExpressionAttributeValues"] = values
    for page in dynamodb.get_paginator("scan").paginate(**scan):
        yield from page["Items"]


class _Digests:
    """The digests of one trail in the bucket, listed by the hours of a window."""

    def __init__(self, s3: Any, bucket: str, trail: str) -> None:
        self._s3, self._bucket, self._trail = s3, bucket, trail
        self._first_hour: str | None = None

    def listed(self, window: Window, check: _Check) -> dict[str, _Listed]:
        """Every entry of the window the digests list, by id; a finding for each digest that is
        not what the producer wrote (overwritten, unreadable) or that disagrees with another."""
        listed: dict[str, _Listed] = {}
        for key, raw in self._objects(window):
            for line in self._lines(key, raw, check):
                time = str(line["modificationTime"])
                if not window.holds(time):
                    continue
                id_, sha = str(line["id"]), str(line["sha256"])
                check.digests.add(key)
                known = listed.get(id_)
                if known is not None and known.sha256 != sha:
                    check.find(
                        time, id_, f"digests disagree: id {id_} at {time} has one hash in {known.digest}, "
                        f"another in {key}",
                    )  # fmt: skip
                    continue
                listed[id_] = _Listed(sha, str(line.get("itemKey", "")), time, key)
        return listed

    def _lines(self, key: str, raw: bytes, check: _Check) -> list[dict[str, Any]]:
        """A digest's entries; none, and a finding, for a digest that is not what its name says."""
        name = key.rsplit("/", 1)[-1]
        if name != hashlib.sha256(raw).hexdigest() + ".json":
            check.find("", key, f"digest {key} does not hash to its name: it was overwritten")
            return []
        try:
            body = json.loads(raw)
            lines = body["entries"]
            if not all(isinstance(line, dict) and line.keys() >= _LINE_FIELDS for line in lines):
                raise ValueError("an entry without id, modificationTime or sha256")
        except (ValueError, KeyError, TypeError) as error:
            check.find("", key, f"digest {key} is not a digest: {error}")
            return []
        return list(lines)

    def _objects(self, window: Window) -> Iterator[tuple[str, bytes]]:
        """(key, body) of each digest of the window's hours, in key order, and of no other hour."""
        prefix = f"{self._trail}/"
        listing: dict[str, Any] = {"Bucket": self._bucket, "Prefix": prefix}
        if window.start is not None:
            listing["StartAfter"] = f"{prefix}{hour_of(window.start)}/"  # before every key of that hour
        last = f"{prefix}{hour_of(window.end)}/" if window.end is not None else None
        with self._bucket_named():
            for page in self._s3.get_paginator("list_objects_v2").paginate(**listing):
                for listed in page.get("Contents", []):
                    key = listed["Key"]
                    if last is not None and key[: len(last)] > last:  # past the window's last hour
                        return
                    yield key, self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()

    def before_first_digest(self, time: str) -> str:
        """A note for an entry in no digest that is older than the trail's first digest ("" otherwise)."""
        if self._first_hour is None:
            with self._bucket_named():  # keys sort by hour: the first key is of the first hour
                first = self._s3.list_objects_v2(Bucket=self._bucket, Prefix=f"{self._trail}/", MaxKeys=1)
            keys = [listed["Key"] for listed in first.get("Contents", [])]
            self._first_hour = keys[0][len(self._trail) + 1 : len(self._trail) + 14] if keys else ""
        if not self._first_hour:
            return f" (no digest of {self._trail} exists at all: is DIGEST_BUCKET set where its producer runs?)"
        if hour_of(time) < self._first_hour:
            year, month, day, hour = self._first_hour.split("/")
            return (
                f" (older than {self._trail}'s first digest, of the hour {year}-{month}-{day}T{hour}: "
                "written before digests were turned on?)"
            )
        return ""

    @contextlib.contextmanager
    def _bucket_named(self) -> Iterator[None]:
        """A missing bucket as one line that names DIGEST_BUCKET; any other error as it is."""
        try:
            yield
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "NoSuchBucket":
                raise NotDone(f"the digest bucket {self._bucket!r} (DIGEST_BUCKET) does not exist") from None
            raise


def _text(entry: Entry, name: str) -> str:
    value = entry.get(name)
    return str(value["S"]) if isinstance(value, dict) and isinstance(value.get("S"), str) else ""


def _quoted(key: str) -> str:
    return json.dumps(key, ensure_ascii=False)
