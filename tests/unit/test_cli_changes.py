"""`config-audit changes` against an in-memory reader of the changes (the ChangesReader's contract,
no AWS): the window, the filters, the forms, and every bad input in one line."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from chalicelib.attribute_values import item_json
from chalicelib.audit.changes import ChangesQuery
from chalicelib.audit.entries import Entry, change_kind, sort_key
from config_audit import changes, cli
from tests.conftest import project_with

NOW = dt.datetime(2026, 11, 30, 12, 0, 0, tzinfo=dt.UTC)
TABLES = "Configuration=Audit,FeatureFlags=FeatureFlagsAudit"


def at(minutes_ago: float) -> str:
    moment = NOW - dt.timedelta(minutes=minutes_ago)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def entry(table: str, key: str, minutes_ago: float, who: str | None = None, **fields: Any) -> Entry:
    """An entry as the reader yields it: attribute-value form, actor joined, tableName added."""
    found: Entry = {
        "id": {"S": f"{table}-{key}-{minutes_ago}"},
        "itemKey": {"S": key},
        "modificationTime": {"S": at(minutes_ago)},
        "sequenceNumber": {"S": str(int(1_000_000 - minutes_ago * 1000))},
        **fields,
        "tableName": {"S": table},
    }
    if who is not None:
        found["actor"] = {"M": {"arn": {"S": who}, "type": {"S": "IAMUser"}, "source": {"S": "cloudtrail"}}}
    return found


ALICE, BOB = "arn:aws:iam::123456789012:user/alice", "arn:aws:iam::123456789012:user/bob"
TRAIL = [
    entry("Configuration", "CACHE_TTL_SEC", 5, ALICE, updatedAttribute={"S": "value"},
          oldValue={"N": "3600"}, newValue={"N": "1800"}),
    entry("FeatureFlags", '{"pk":"tenant-1","sk":"flag#dark-mode"}', 12, BOB,
          newValue={"M": {"pk": {"S": "tenant-1"}, "sk": {"S": "flag#dark-mode"}, "enabled": {"BOOL": False}}}),
    entry("Configuration", "OLD,\"key\"\n", 40, None, oldValue={"M": {"key": {"S": "OLD"}}}),
    entry("Configuration", "LONG_AGO", 90, ALICE, newValue={"M": {"key": {"S": "LONG_AGO"}}}),
]  # fmt: skip


class InMemoryChanges:
    """The reader's contract over a list: [start, end), tables, kinds, actor substring; newest first."""

    def __init__(self, entries: list[Entry]) -> None:
        self.stored = entries

    def entries(self, query: ChangesQuery, oldest_first: bool = False) -> Iterator[Entry]:
        for found in sorted(self.stored, key=sort_key, reverse=not oldest_first):
            arns = [found["actor"]["M"]["arn"]["S"]] if "actor" in found else []
            if (
                query.start <= found["modificationTime"]["S"] < query.end
                and (not query.tables or found["tableName"]["S"] in query.tables)
                and (not query.kinds or change_kind(found).value in query.kinds)
                and (query.actor is None or any(query.actor in arn for arn in arns))
            ):
                yield found


@pytest.fixture
def trail(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """The stage audits two tables; the changes are TRAIL's; now is NOW. The project's directory."""
    monkeypatch.setattr(changes, "reader_for", lambda c: InMemoryChanges(TRAIL))
    monkeypatch.setattr(changes, "now", lambda: NOW)
    return project_with(tmp_path, AUDITED_TABLES=TABLES)


def out(capsys: pytest.CaptureFixture[str], project: str, *argv: str) -> str:
    capsys.readouterr()
    assert cli.main(["--project-dir", project, *argv]) == 0
    printed, err = capsys.readouterr()
    assert err == ""
    return printed


def fails(capsys: pytest.CaptureFixture[str], project: str, *argv: str) -> str:
    """A non-zero exit (2 for usage), nothing on stdout, one line on stderr; the line."""
    capsys.readouterr()
    try:
        status = cli.main(["--project-dir", project, *argv])
    except SystemExit as exit_:
        status = exit_.code  # type: ignore[assignment]
    printed, err = capsys.readouterr()
    assert status in (1, 2) and printed == ""
    [line] = err.splitlines()
    return line


def test_changes_since_1h_lists_every_tables_changes_newest_first_with_who(
    trail: str, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = out(capsys, trail, "changes", "--since", "1h").splitlines()
    assert lines[0].split() == ["time", "table", "key", "change", "who", "old", "->", "new"]
    rows = lines[2:]
    assert [row.split()[:2] for row in rows] == [
        [at(5), "Configuration"], [at(12), "FeatureFlags"], [at(40), "Configuration"],
    ]  # fmt: skip
    assert "updated value" in rows[0] and f"{ALICE} (cloudtrail)" in rows[0] and "3600 -> 1800" in rows[0]
    assert f"{BOB} (cloudtrail)" in rows[1]
    assert 'OLD,"key"\\n' in rows[2] and "deleted" in rows[2]  # the key's newline escaped: one line a change


def test_without_a_window_it_is_the_last_hour(trail: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert out(capsys, trail, "changes") == out(capsys, trail, "changes", "--since", "1h")
    # --to alone: the hour before it, its first moment included (LONG_AGO is exactly 90 minutes old)
    before = out(capsys, trail, "changes", "--to", "30m", "--output", "json").splitlines()
    assert [json.loads(line)["itemKey"] for line in before] == ['OLD,"key"\n', "LONG_AGO"]
    only_old = out(capsys, trail, "changes", "--from", "2h", "--to", "60m", "--output", "json")
    assert [json.loads(line)["itemKey"] for line in only_old.splitlines()] == ["LONG_AGO"]


@pytest.mark.parametrize(
    ("options", "keys"),
    [
        (["--table", "FeatureFlags"], ['{"pk":"tenant-1","sk":"flag#dark-mode"}']),
        (["--kind", "deleted"], ['OLD,"key"\n']),
        (["--kind", "created,updated"], ["CACHE_TTL_SEC", '{"pk":"tenant-1","sk":"flag#dark-mode"}']),
        (["--by", "alice"], ["CACHE_TTL_SEC"]),
        (["--by", "user/", "--kind", "created"], ['{"pk":"tenant-1","sk":"flag#dark-mode"}']),
        (["--table", "Configuration", "--kind", "updated", "--by", "alice"], ["CACHE_TTL_SEC"]),
        (["--limit", "2"], ["CACHE_TTL_SEC", '{"pk":"tenant-1","sk":"flag#dark-mode"}']),
        (["--by", "carol"], []),
    ],
)
def test_each_filter_and_filters_combined(
    trail: str, options: list[str], keys: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    lines = out(capsys, trail, "changes", "--since", "1h", "--output", "json", *options).splitlines()
    assert [json.loads(line)["itemKey"] for line in lines] == keys


def test_json_lines_are_the_api_rendering_of_each_entry_with_its_table(
    trail: str, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = out(capsys, trail, "--output", "json", "changes", "--since", "1h").splitlines()
    assert lines == [item_json(found) for found in TRAIL[:3]]
    assert json.loads(lines[1])["tableName"] == "FeatureFlags"


def test_csv_names_each_changes_table_and_round_trips(trail: str, capsys: pytest.CaptureFixture[str]) -> None:
    header, *rows = csv.reader(io.StringIO(out(capsys, trail, "changes", "--output", "csv"), newline=""))
    cells = [dict(zip(header, row, strict=True)) for row in rows]
    assert [(c["table"], c["key"], c["change"], c["actor"]) for c in cells] == [
        ("Configuration", "CACHE_TTL_SEC", "updated", ALICE),
        ("FeatureFlags", '{"pk":"tenant-1","sk":"flag#dark-mode"}', "created", BOB),
        ("Configuration", 'OLD,"key"\n', "deleted", ""),
    ]
    assert json.loads(cells[0]["new"], parse_int=Decimal) == 1800


def test_a_window_with_no_change_says_so(trail: str, capsys: pytest.CaptureFixture[str]) -> None:
    said = out(capsys, trail, "changes", "--since", "1m", "--kind", "deleted", "--by", "alice")
    assert said == f"no change from {at(1)} to {at(0)} (deleted, by 'alice')\n"
    assert out(capsys, trail, "changes", "--since", "1m", "--output", "json") == ""
    assert out(capsys, trail, "changes", "--since", "1m", "--output", "csv").startswith("time,table,key,")


def test_a_window_may_reach_past_now_as_get_changes_may(trail: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert out(capsys, trail, "changes", "--from", "1h", "--to", "2999-01-01T00:00:00Z", "--output", "csv").startswith(
        "time,table,key,"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--since", "1h", "--from", "2h"], "argument --from: not allowed with argument --since"),
        (["--kind", "renamed"], "--kind 'renamed' is not a kind of change: give created, updated, deleted, expired"),
        (["--kind", "updated,"], "--kind 'updated,' is not a kind of change"),
        (["--by", ""], "--by is empty"),
        (["--from", "1h", "--to", "2h"], f"--from {at(60)} is after --to {at(120)}"),
        (["--since", "now", "--to", "1s"], "--since 2026-11-30T12:00:00.000Z is after --to"),
        (["--since", "1x"], "time '1x' is not ISO 8601 with a zone, such as 2024-09-11T09:03:00Z, or relative"),
        (["--limit", "0"], "argument --limit: must be a whole number from 1 to 999,999,999,999,999,999, not '0'"),
        (["--output", "yaml"], "argument --output: invalid choice: 'yaml'"),
        (
            ["--table", "Orders"],
            "table 'Orders' is not audited here: AUDITED_TABLES names 'Configuration', 'FeatureFlags'",
        ),
        (["CACHE_TTL_SEC"], "unrecognized arguments: CACHE_TTL_SEC"),
    ],
)
def test_each_bad_input_is_one_line_and_a_non_zero_exit(
    trail: str, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line = fails(capsys, trail, "changes", *argv)
    assert line.startswith("config-audit") and message in line
