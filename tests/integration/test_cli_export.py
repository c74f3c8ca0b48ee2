"""`config-audit export` against moto: a window into a file or into S3 (gzip, one object a day
under dt=YYYY-MM-DD/), rerun without duplicates, progress only on a terminal, bounded memory."""

from __future__ import annotations

import csv
import gzip
import io
import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalicelib.attribute_values import item_json
from chalicelib.audit.entries import Entry
from chalicelib.audit.repository import DynamoDBAuditRepository
from config_audit import changes, cli
from tests.conftest import AUDIT, REGION, Stack

BUCKET = "audit-exports"
WINDOW = ["--from", "2024-09-10T00:00:00Z", "--to", "2024-09-13T00:00:00Z"]
DAYS = ["2024-09-10", "2024-09-11", "2024-09-12"]


def entry(number: int, time: str) -> Entry:
    """An entry as the producer writes it: a setting created, with a value worth exporting."""
    key = f"SETTING_{number:05d}"
    return {
        "id": {"S": f"00000000-0000-4000-8000-{number:012d}"},
        "itemKey": {"S": key},
        "modificationTime": {"S": time},
        "sequenceNumber": {"S": str(10**20 + number)},
        "newValue": {"M": {"key": {"S": key}, "value": {"N": str(number)}, "note": {"S": 'a,"b"\nc ü'}}},
    }


def save(stack: Stack, entries: list[Entry]) -> None:
    """Straight into the trail with BatchWriteItem, as the producer writes (10x faster than the stream)."""
    result = DynamoDBAuditRepository(stack.dynamodb, AUDIT, write_concurrency=1).save(entries)
    assert not result.unwritten and not result.refused


@pytest.fixture
def trail(stack: Stack) -> list[Entry]:
    """Nine entries over three days (and one on each side of the window); the bucket."""
    times = [f"{day}T{hour:02d}:00:00.000Z" for day in DAYS for hour in (0, 12, 23)]
    inside = [entry(n, time) for n, time in enumerate(times)]
    save(stack, [*inside, entry(90, "2024-09-09T23:59:59.999Z"), entry(91, "2024-09-13T00:00:00.000Z")])
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    return inside


def out(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    assert cli.main(list(argv)) == 0
    printed, err = capsys.readouterr()
    assert err == ""  # not a terminal: no progress bar
    return printed


def objects(prefix: str = "") -> dict[str, bytes]:
    s3 = boto3.client("s3", region_name=REGION)
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return {item["Key"]: s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read() for item in listed}


def lines_of(stored: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in gzip.decompress(stored).decode().splitlines()]


def test_an_export_to_s3_is_one_gzipd_object_a_day_under_dt_prefixes(
    trail: list[Entry], capsys: pytest.CaptureFixture[str]
) -> None:
    said = out(capsys, "export", *WINDOW, "--format", "jsonl", "--out", f"s3://{BUCKET}/config-audit/")
    assert said == (
        "exported 9 entries from 2024-09-10T00:00:00.000Z to 2024-09-13T00:00:00.000Z "
        f"into 3 objects under s3://{BUCKET}/config-audit/\n"
    )
    stored = objects()
    assert sorted(stored) == [
        f"config-audit/dt={day}/all-tables_{day.replace('-', '')}T000000000Z_{after}T000000000Z.jsonl.gz"
        for day, after in zip(DAYS, ["20240911", "20240912", "20240913"], strict=True)
    ]
    # THEN each object is gzip'd JSON Lines of its own day's entries, oldest first, the API's rendering
    for key, body in stored.items():
        day = key.split("dt=")[1][:10]
        expected = [e for e in trail if e["modificationTime"]["S"].startswith(day)]
        assert gzip.decompress(body).decode().splitlines() == [
            item_json({**e, "tableName": {"S": "Configuration"}}) for e in expected
        ]


def test_an_export_run_again_overwrites_its_objects_instead_of_duplicating_them(
    trail: list[Entry], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["export", *WINDOW, "--format", "jsonl", "--out", f"s3://{BUCKET}/x"]
    out(capsys, *argv)
    first = objects()
    # WHEN an export is interrupted in the middle of the second day, then run again whole
    real = changes.reader_for

    def interrupted(c: Any) -> Any:
        class Reader:
            def entries(self, query: Any, oldest_first: bool = False) -> Iterator[Entry]:
                for count, found in enumerate(real(c).entries(query, oldest_first), 1):
                    if count == 5:
                        raise KeyboardInterrupt
                    yield found

        return Reader()

    monkeypatch.setattr(changes, "reader_for", interrupted)
    assert cli.main(argv) == 1
    assert capsys.readouterr().err == "config-audit: interrupted: nothing more written\n"
    monkeypatch.setattr(changes, "reader_for", real)
    out(capsys, *argv)
    # THEN the same objects, with the same bytes: nothing duplicated, nothing half written
    assert objects() == first and len(first) == 3


def test_an_export_to_s3_in_csv_has_a_header_in_each_object(
    trail: list[Entry], capsys: pytest.CaptureFixture[str]
) -> None:
    out(capsys, "--table", "Configuration", "export", *WINDOW, "--format", "csv", "--out", f"s3://{BUCKET}")
    stored = objects()
    assert all(key.startswith("dt=") and "/table-Configuration_" in key and key.endswith(".csv.gz") for key in stored)
    for body in stored.values():
        header, *rows = csv.reader(io.StringIO(gzip.decompress(body).decode(), newline=""))
        assert header[:4] == ["time", "table", "key", "change"] and len(rows) == 3
        assert all(json.loads(row[8])["note"] == 'a,"b"\nc ü' for row in rows)


def test_an_export_to_a_file_is_one_file_oldest_first(
    trail: list[Entry], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "window.jsonl"
    said = out(capsys, "export", *WINDOW, "--format", "jsonl", "--out", str(target))
    assert said.startswith("exported 9 entries from 2024-09-10T00:00:00.000Z") and said.endswith(f"into {target}\n")
    assert [json.loads(line)["itemKey"] for line in target.read_text().splitlines()] == [
        e["itemKey"]["S"] for e in trail
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["window.jsonl"]  # no partial file left beside it


def test_an_interrupted_export_to_a_file_leaves_no_file(
    trail: list[Entry], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Broken:
        def entries(self, query: Any, oldest_first: bool = False) -> Iterator[Entry]:
            yield trail[0]
            raise KeyboardInterrupt

    monkeypatch.setattr(changes, "reader_for", lambda c: Broken())
    assert cli.main(["export", *WINDOW, "--format", "csv", "--out", str(tmp_path / "w.csv")]) == 1
    assert list(tmp_path.iterdir()) == []


def test_progress_is_shown_on_stderr_only_when_it_is_a_terminal(
    trail: list[Entry], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["export", *WINDOW, "--format", "jsonl", "--out", str(tmp_path / "w.jsonl")]
    out(capsys, *argv)  # not a terminal: stderr stays empty (out checks it)
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    assert cli.main(argv) == 0
    printed, err = capsys.readouterr()
    assert printed.startswith("exported 9 entries") and printed.count("\n") == 1  # stdout: the answer only
    assert "exporting 100%" in err and "9 entries" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([*WINDOW, "--format", "xml", "--out", "f"], "argument --format: invalid choice: 'xml'"),
        ([*WINDOW, "--format", "jsonl", "--out", ""], "--out is empty"),
        ([*WINDOW, "--format", "jsonl", "--out", "s3:///prefix/"], "--out 's3:///prefix/' names no bucket"),
        (["--to", "now", "--format", "jsonl", "--out", "f"], "the following arguments are required: --from"),
        (["--from", "1h", "--to", "2h", "--format", "jsonl", "--out", "f"], "--from 20"),
        (["--from", "1 h", "--to", "now", "--format", "jsonl", "--out", "f"], "time '1 h' is not ISO 8601 with a zone"),
        ([*WINDOW, "--format", "jsonl", "--out", "/nonexistent/dir/w.jsonl"], "cannot write /nonexistent/dir/w.jsonl"),
        ([*WINDOW, "--format", "jsonl", "--out", "s3://no-such-bucket/p/"], "cannot write s3://no-such-bucket/p/dt="),
        ([*WINDOW, "--format", "jsonl", "--out", "f", "--output", "json"], "unrecognized arguments: --output json"),
    ],
)
def test_each_bad_input_is_one_line_and_a_non_zero_exit(
    trail: list[Entry], argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    try:
        status = cli.main(["export", *argv])
    except SystemExit as exit_:
        status = exit_.code  # type: ignore[assignment]
    printed, err = capsys.readouterr()
    assert status in (1, 2) and printed == ""
    [line] = err.splitlines()
    assert line.startswith("config-audit") and message in line


ENTRIES = 20_000


def test_an_export_of_20000_entries_holds_a_small_part_of_them_in_memory(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN 20,000 entries over two days
    save(stack, [entry(n, f"2024-09-1{n % 2}T{n // 1000:02d}:{n % 60:02d}:{n % 59:02d}.{n % 1000:03d}Z")
                 for n in range(ENTRIES)])  # fmt: skip
    target = tmp_path / "big.jsonl"
    capsys.readouterr()
    # WHEN they are exported, memory traced
    tracemalloc.start()
    try:
        assert cli.main(["export", "--from", "2024-09-10T00:00:00Z", "--to", "2024-09-12T00:00:00Z",
                         "--format", "jsonl", "--out", str(target)]) == 0  # fmt: skip
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # THEN every entry was written, and the peak is a small part of the output's size
    assert capsys.readouterr().out.startswith(f"exported {ENTRIES} entries")
    size = target.stat().st_size
    assert sum(1 for _ in target.open()) == ENTRIES
    print(f"export of {ENTRIES} entries: output {size / 1e6:.1f} MB, traced peak {peak / 1e6:.1f} MB")
    assert peak < size / 2
