"""``export``: a window of the trail, of any size, into one file or into S3 for Athena, in bounded
memory: entries are read oldest first through the time index and written as they come.

    config-audit export --from 7d --to now --format jsonl --out changes.jsonl
    config-audit export --from 2024-09-01T00:00:00Z --to 2024-10-01T00:00:00Z --format jsonl \\
        --out s3://audit-exports/config-audit/

To S3: one gzip'd object a day under ``PREFIX/dt=YYYY-MM-DD/`` (Hive-style partitions, for
Athena's partition projection), named after the table and the part of the window that falls on
that day, so the same command run again overwrites its own objects instead of adding copies, and
a day that two exports cover whole is the same object. Each object is built in a temporary file
and uploaded once, whole: an interrupted export leaves whole objects only. A file is written
beside its name and renamed into place when complete.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import io
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from tqdm import tqdm

from chalicelib.audit.changes import ChangesQuery
from chalicelib.audit.entries import Entry, time_of
from config_audit import changes
from config_audit.errors import NotDone
from config_audit.output import ENTRY_COLUMNS, cells, entry_line, entry_row
from config_audit.times import FORMS, check_order, now, parse_time

if TYPE_CHECKING:
    from config_audit.cli import Command

FORMATS = ("jsonl", "csv")
# one part of an object in flight at a time: memory holds one 8 MB part, however big a day is
UPLOAD = TransferConfig(max_concurrency=1, use_threads=False)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The window, the form and where to write."""
    first = f"the first moment, included: {FORMS}"
    parser.add_argument("--from", dest="start", required=True, metavar="TIME", help=first)
    parser.add_argument("--to", dest="end", required=True, metavar="TIME", help="the end, excluded, in the same forms")
    parser.add_argument("--format", required=True, choices=FORMATS, help="JSON Lines (the API's entries) or CSV")
    parser.add_argument("--out", required=True, metavar="FILE|s3://BUCKET/PREFIX/", help="a file, or an S3 prefix")


@dataclass(frozen=True)
class S3Prefix:
    """Where the objects go: ``s3://BUCKET/PREFIX/``."""

    bucket: str
    prefix: str  # "" or ending in "/"

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def destination(out: str) -> Path | S3Prefix:
    """--out: ``s3://BUCKET/PREFIX/`` (its trailing slash may be left out), or a file's path."""
    if not out:
        raise NotDone("--out is empty: give a file, or s3://BUCKET/PREFIX/")
    if not out.startswith("s3://"):
        return Path(out)
    bucket, _, prefix = out[len("s3://") :].partition("/")
    if not bucket:
        raise NotDone(f"--out {out!r} names no bucket: give s3://BUCKET/PREFIX/")
    prefix = prefix.strip("/")
    return S3Prefix(bucket, prefix + "/" if prefix else "")


def export(c: Command) -> str:
    """Write the window's entries, oldest first; one line saying what was written."""
    current = now()
    start, end = parse_time(c.args.start, current, bound=True), parse_time(c.args.end, current, bound=True)
    check_order(start, end, "--from", "--to")
    target = destination(c.args.out)
    tables = (c.args.table,) if c.args.table is not None else ()
    entries = changes.reader_for(c).entries(ChangesQuery(start, end, tables), oldest_first=True)
    window = f"from {start} to {end}"
    with Progress(start, end) as progress:
        if isinstance(target, Path):
            count = to_file(progress.through(entries), c.args.format, target)
            return f"exported {_counted(count, 'entry', 'entries')} {window} into {target}"
        scope = f"table-{c.args.table}" if c.args.table is not None else "all-tables"
        s3 = boto3.client("s3", **c.session)
        count, objects = to_s3(s3, progress.through(entries), c.args.format, target, (scope, start, end))
    written = _counted(objects, "object", "objects")
    return f"exported {_counted(count, 'entry', 'entries')} {window} into {written} under {target}"


def writer(stream: IO[str], form: str) -> Callable[[Entry], object]:
    """What writes one entry to ``stream`` in ``form``; a CSV header is written first."""
    if form == "csv":
        rows = csv.writer(stream)  # RFC 4180 quoting; CRLF after each row
        rows.writerow(ENTRY_COLUMNS)
        return lambda entry: rows.writerow(cells(entry_row(entry)))
    return lambda entry: stream.write(entry_line(entry) + "\n")


def to_file(entries: Iterable[Entry], form: str, path: Path) -> int:
    """Write every entry into ``path`` (replaced only once complete); how many."""
    partial = path.with_name(path.name + ".partial")
    count = 0
    try:
        with partial.open("w", encoding="utf-8", newline="") as stream:
            write = writer(stream, form)
            for entry in entries:
                write(entry)
                count += 1
        partial.replace(path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise NotDone(f"cannot write {path}: {error.strerror or error}") from None
    except BaseException:  # interrupted: no half file is left under either name
        partial.unlink(missing_ok=True)
        raise
    return count


def to_s3(
    s3: Any, entries: Iterable[Entry], form: str, target: S3Prefix, window: tuple[str, str, str]
) -> tuple[int, int]:
    """Write the entries (oldest first) as one gzip'd object a day; (entries, objects) written.

    ``window`` is (scope, start, end): each day's object is named after the scope and the part of
    the window on that day.
    """
    count = objects = 0
    day: DayObject | None = None
    for entry in entries:
        date = time_of(entry)[:10]
        if day is None or date != day.date:
            if day is not None:
                if date < day.date:  # a day's object is uploaded once: going back would overwrite it half full
                    raise NotDone(f"the trail returned {time_of(entry)} after {day.date}: entries out of order")
                day.upload(s3, target, window)
                objects += 1
            day = DayObject(date, form)
        day.write(entry)
        count += 1
    if day is not None:
        day.upload(s3, target, window)
        objects += 1
    return count, objects


class DayObject:
    """One day's entries, gzip'd into a temporary file until the day is complete."""

    def __init__(self, date: str, form: str) -> None:
        self.date = date
        self.form = form
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by upload) on disk: a day costs no memory
        # mtime 0: the same entries give the same bytes, so a rerun writes identical objects
        self._text = io.TextIOWrapper(
            gzip.GzipFile(fileobj=self._file, mode="wb", mtime=0), encoding="utf-8", newline=""
        )
        self.write = writer(self._text, form)

    def key(self, target: S3Prefix, window: tuple[str, str, str]) -> str:
        """``PREFIX/dt=DATE/<scope>_<start>_<end>.<form>.gz``, the window cut to this day."""
        scope, start, end = window
        first, last = max(start, f"{self.date}T00:00:00.000Z"), min(end, _next_day(self.date))
        return f"{target.prefix}dt={self.date}/{scope}_{_compact(first)}_{_compact(last)}.{self.form}.gz"

    def upload(self, s3: Any, target: S3Prefix, window: tuple[str, str, str]) -> None:
        """Finish the gzip stream and upload it as one object."""
        key = self.key(target, window)
        self._text.close()  # closes the gzip stream (its trailer written), not the file under it
        self._file.seek(0)
        try:
            s3.upload_fileobj(self._file, target.bucket, key, ExtraArgs={"ContentType": "application/gzip"},
                              Config=UPLOAD)  # fmt: skip
        except S3UploadFailedError as error:  # s3transfer's wrapper of the ClientError: say what S3 said
            raise NotDone(f"cannot write s3://{target.bucket}/{key}: {error}") from None
        except ClientError as error:
            details = error.response.get("Error", {})
            said = f"{details.get('Code')}: {details.get('Message')}"
            raise NotDone(f"cannot write s3://{target.bucket}/{key}: {said}") from None
        finally:
            self._file.close()


def _next_day(date: str) -> str:
    try:
        return (dt.date.fromisoformat(date) + dt.timedelta(days=1)).isoformat() + "T00:00:00.000Z"
    except OverflowError:  # 9999-12-31: the window ends that day anyway
        return "9999-12-31T23:59:59.999Z"


def _compact(time: str) -> str:
    """2024-09-11T09:03:00.250Z -> 20240911T090300250Z: no character a tool might read as a separator."""
    return time.replace("-", "").replace(":", "").replace(".", "")


class Progress:
    """How far through the window the export is, as a bar on stderr, only when stderr is a terminal."""

    def __init__(self, start: str, end: str) -> None:
        self._start = _milliseconds(start)
        self._done = 0
        self._count = 0
        self._bar = tqdm(
            total=max(_milliseconds(end) - self._start, 1),
            file=sys.stderr,
            disable=not sys.stderr.isatty(),  # a pipe or a log gets no bar, only the answer on stdout
            desc="exporting",
            bar_format="{desc} {percentage:3.0f}% |{bar}| {postfix} [{elapsed}<{remaining}]",
            postfix="0 entries",
        )

    def through(self, entries: Iterable[Entry]) -> Iterator[Entry]:
        """The entries, the bar following their times (they come oldest first)."""
        if self._bar.disable:  # no time parsed per entry when nobody sees the bar
            yield from entries
            return
        for entry in entries:
            self._count += 1
            reached = _milliseconds(time_of(entry)) - self._start
            if reached > self._done:
                self._bar.update(reached - self._done)
                self._done = reached
            self._bar.set_postfix_str(f"{self._count} entries", refresh=False)
            yield entry

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if kind is None and self._bar.total is not None:
            self._bar.update(self._bar.total - self._done)  # the whole window was read
        self._bar.close()


def _milliseconds(time: str) -> int:
    moment = dt.datetime.strptime(time, "%Y-%m-%dT%H:%M:%S.%f%z")
    return (moment - dt.datetime(1, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1)


def _counted(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"
