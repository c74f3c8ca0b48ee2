"""--output json|csv on history, at and diff, and history --limit/--since, against moto: JSON Lines
are exactly the API's entries, CSV round-trips through Python's csv module."""

from __future__ import annotations

import csv
import io
import json
import unicodedata
import urllib.parse
import warnings
from decimal import Decimal
from typing import Any

import boto3
import pytest
from chalice.test import Client

from config_audit import cli
from tests.conftest import REGION, Stack

pytestmark = pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")

# a key and values with commas, quotes, newlines, unicode (and a 38-digit number, a set, binary, a map)
KEY = 'feature,"flag"\nété 日本'
TRICKY = 'a,"b"\nc, ü 🎉'
BIG = "12345678901234567890123456789012345678"


def audit(stack: Stack, client: Client) -> None:
    assert client.lambda_.invoke("audit_producer", stack.new_event()).payload == {"batchItemFailures": []}


def out(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """main() succeeds: exit status 0, nothing on stderr; what it printed on stdout."""
    capsys.readouterr()  # what the function printed while auditing is not the CLI's
    assert cli.main(list(argv)) == 0
    printed, err = capsys.readouterr()
    assert err == ""
    return printed


def fails(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """main() fails with a non-zero status (2 for usage), nothing on stdout, one line on stderr; the line."""
    capsys.readouterr()
    try:
        status = cli.main(list(argv))
    except SystemExit as exit_:  # argparse's usage error
        status = exit_.code  # type: ignore[assignment]
    printed, err = capsys.readouterr()
    assert status in (1, 2) and printed == ""
    [line] = err.splitlines()
    assert line.startswith("config-audit") and "Traceback" not in line
    return line


def api_body(client: Client, key: str) -> str:
    """The text GET /audit/{key} answers with (one page of all of it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        response = client.http.get(f"/audit/{urllib.parse.quote(key, safe='')}?limit=1000")
    assert response.status_code == 200
    body: str = response.body.decode()
    return body


def exact(text: str) -> Any:
    return json.loads(text, parse_float=Decimal, parse_int=Decimal)


@pytest.fixture
def tricky(stack: Stack, client: Client) -> list[str]:
    """KEY created, changed in every way, and deleted, stamped by a writer; the entries' times."""
    stack.put(KEY, value=Decimal(BIG), note=TRICKY, modifiedBy="deploy-bot")
    stack.put(KEY, value=Decimal("0.1"), note=TRICKY, tags={"b", "a"}, blob=b"\x00\xff", modifiedBy="deploy-bot",
              **{'odd,"name"\n': {"nested": None, "on": True}})  # fmt: skip
    stack.delete(KEY)
    audit(stack, client)
    return sorted(entry["modificationTime"] for entry in stack.audit_entries())


def test_history_json_lines_are_exactly_the_api_body_entries(
    tricky: list[str], client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = out(capsys, "history", KEY, "--output", "json").splitlines()
    # THEN the lines, joined as the API joins its entries, are the API's body byte for byte
    assert len(lines) == 1 + 4 + 1  # created; value, tags, blob and the odd name changed; deleted
    assert f'{{"entries":[{",".join(lines)}],"next":null}}' == api_body(client, KEY)
    # AND each line parses back to the body's entry, newest first, the actor joined
    entries = exact(api_body(client, KEY))["entries"]
    assert [exact(line) for line in lines] == entries
    assert entries[-1]["actor"] == {"arn": "deploy-bot", "type": "Declared", "source": "declared"}


def test_history_csv_round_trips_through_pythons_csv_module(
    tricky: list[str], client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    text = out(capsys, "history", KEY, "--output", "csv")
    header, *rows = csv.reader(io.StringIO(text, newline=""))
    assert header == ["time", "table", "key", "change", "attribute", "actor", "actor_source", "old", "new", "id",
                      "sequence_number"]  # fmt: skip
    entries = exact(api_body(client, KEY))["entries"]
    assert len(rows) == len(entries)
    for row, entry in zip(rows, entries, strict=True):
        cell = dict(zip(header, row, strict=True))
        assert (cell["time"], cell["table"], cell["key"], cell["id"], cell["sequence_number"]) == (
            entry["modificationTime"], "Configuration", KEY, entry["id"], entry["sequenceNumber"],
        )  # fmt: skip
        assert cell["attribute"] == entry.get("updatedAttribute", "")
        for column, field in (("old", "oldValue"), ("new", "newValue")):
            assert (exact(cell[column]) if cell[column] else None) == entry.get(field)
        actor = entry.get("actor")
        assert (cell["actor"], cell["actor_source"]) == ((actor["arn"], actor["source"]) if actor else ("", ""))
    assert [row[3] for row in rows] == ["deleted", *["updated"] * 4, "created"]
    assert any(cell == 'odd,"name"\n' for row in rows for cell in row)  # a name with a comma, quotes, a newline
    assert exact(rows[-1][8])["note"] == TRICKY and exact(rows[-1][8])["value"] == Decimal(BIG)


def test_history_limit_gives_the_newest_n_shown_oldest_first_in_the_table(
    tricky: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    table = out(capsys, "history", KEY, "--limit", "2").splitlines()
    assert [row.split()[0] for row in table[2:]] == tricky[-2:]  # oldest first
    lines = out(capsys, "history", KEY, "--limit", "2", "--output", "json").splitlines()
    assert [exact(line)["modificationTime"] for line in lines] == tricky[::-1][:2]  # newest first, as the API


def test_history_limit_reads_no_more_of_the_history_than_it_shows(
    stack: Stack, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a key with 40 changes
    for value in range(40):
        stack.put("BUSY", value=value)
    audit(stack, client)
    read: list[int] = []

    def count(parsed: dict[str, Any], **_: Any) -> None:  # entries of BUSY each Query of the Audit table returned
        read.append(sum(item.get("itemKey") == {"S": "BUSY"} for item in parsed.get("Items", [])))

    boto3.DEFAULT_SESSION or boto3.setup_default_session(region_name=REGION)
    boto3.DEFAULT_SESSION.events.register("after-call.dynamodb.Query", count)
    try:
        # WHEN the newest three are asked for
        lines = out(capsys, "history", "BUSY", "--limit", "3", "--output", "json").splitlines()
    finally:
        boto3.DEFAULT_SESSION.events.unregister("after-call.dynamodb.Query", count)
    # THEN three are shown, and about three were read, not forty
    assert [exact(line)["newValue"] for line in lines] == [39, 38, 37]
    assert sum(read) <= 4


def test_history_since_gives_the_entries_at_or_after_a_time(
    tricky: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    since = tricky[-1]  # the deletion's time: the deletion, and whatever shares its millisecond
    lines = out(capsys, "history", KEY, "--since", since, "--output", "json").splitlines()
    assert lines and all(exact(line)["modificationTime"] >= since for line in lines)
    assert len(out(capsys, "history", KEY, "--since", "1h", "--output", "json").splitlines()) == len(tricky)
    assert out(capsys, "history", KEY, "--since", "now").startswith(f"no change of {KEY!r} since 20")


def test_at_and_diff_in_json_and_csv(tricky: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    created, deleted = tricky[0], tricky[-1]
    # at: the item as the API renders an image, or null; csv: one row an attribute
    item = exact(out(capsys, "at", KEY, created, "--output", "json"))
    assert item == {"key": KEY, "value": Decimal(BIG), "note": TRICKY, "modifiedBy": "deploy-bot"}
    assert out(capsys, "at", KEY, "2000-01-01T00:00:00Z", "--output", "json") == "null\n"
    header, *rows = csv.reader(io.StringIO(out(capsys, "--output", "csv", "at", KEY, created), newline=""))
    assert header == ["attribute", "value"] and [row[0] for row in rows] == sorted(item)
    assert {name: exact(value) for name, value in rows} == item
    # diff: entry-shaped differences, one a line; csv: key, change, attribute, old, new
    changed = [exact(line) for line in out(capsys, "diff", KEY, created, tricky[-2], "--output", "json").splitlines()]
    assert {d["updatedAttribute"]: (d.get("oldValue"), d.get("newValue")) for d in changed} == {
        "blob": (None, "AP8="),
        'odd,"name"\n': (None, {"nested": None, "on": True}),
        "tags": (None, ["a", "b"]),
        "value": (Decimal(BIG), Decimal("0.1")),
    }
    assert all(d["itemKey"] == KEY for d in changed)
    [gone] = [exact(line) for line in out(capsys, "diff", KEY, created, deleted, "--output", "json").splitlines()]
    assert set(gone) == {"itemKey", "oldValue"} and gone["oldValue"]["note"] == TRICKY
    header, *rows = csv.reader(io.StringIO(out(capsys, "diff", KEY, created, deleted, "--output", "csv"), newline=""))
    assert header == ["key", "change", "attribute", "old", "new"]
    assert [[*row[:3], row[4]] for row in rows] == [[KEY, "deleted", "", ""]]
    assert exact(rows[0][3]) == gone["oldValue"]
    assert out(capsys, "diff", KEY, "2000-01-01T00:00:00Z", "2001-01-01T00:00:00Z", "--output", "json") == ""


@pytest.mark.parametrize(
    "argv",
    [
        ["--output", "json", "history", "K"],
        ["history", "K", "--output", "json"],
        ["--output", "csv", "history", "--output", "json", "K"],
    ],
)
def test_output_goes_before_or_after_the_command(argv: list[str]) -> None:
    assert cli.parser().parse_args(argv).output == "json"


def test_output_defaults_to_the_table() -> None:
    assert cli.parser().parse_args(["at", "K", "now"]).output == "table"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["history", "K", "--output", "xml"], "argument --output: invalid choice: 'xml'"),
        (
            ["history", "K", "--limit", "0"],
            "argument --limit: must be a whole number from 1 to 999,999,999,999,999,999, not '0'",
        ),
        (
            ["history", "K", "--limit", "-3"],
            "argument --limit: must be a whole number from 1 to 999,999,999,999,999,999, not '-3'",
        ),
        (
            ["history", "K", "--limit", "ten"],
            "argument --limit: must be a whole number from 1 to 999,999,999,999,999,999, not 'ten'",
        ),
        (
            ["history", "K", "--limit", "1" * 5000],
            "argument --limit: must be a whole number from 1 to 999,999,999,999,999,999",
        ),
        (["history", "K", "--since", "yesterday"], "time 'yesterday' is not ISO 8601 with a zone"),
        (["history", "K", "--since", "0m"], "time '0m' is not ISO 8601 with a zone"),
        (["at", "K", "1y"], "or relative to now: now, 90s, 15m, 2h or 7d"),
        (["diff", "K", "now", "1h"], "FROM 20"),
        (["--output", "json", "put", "K", "1"], "--output json is for at, changes, diff, history, not put"),
        (["rollback", "K", "--to", "1h", "--output", "json"], "unrecognized arguments: --output json"),
    ],
)
def test_each_bad_option_is_one_line_and_a_non_zero_exit(
    stack: Stack, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert message in fails(capsys, *argv)
    assert stack.dynamodb.scan(TableName="Configuration")["Items"] == []  # nothing written


def test_json_lines_hold_no_control_character_and_parse_to_the_api_entry(
    stack: Stack, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN stored text with an escape sequence, a C1 control and a line separator
    key = "K\x1b[31m\x9b\u2028"
    stack.put(key, value="v\x1b[2J\x85")
    audit(stack, client)
    lines = out(capsys, "history", key, "--output", "json").splitlines()
    assert not any(unicodedata.category(c) in ("Cc", "Zl") for line in lines for c in line)
    assert [exact(line) for line in lines] == exact(api_body(client, key))["entries"]


def test_csv_on_a_terminal_escapes_control_characters(
    stack: Stack, client: Client, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "K\n\x1b[31m"
    stack.put(key, value=1)
    audit(stack, client)
    capsys.readouterr()
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    text = out(capsys, "history", key, "--output", "csv")
    assert "\x1b" not in text and "K\\u000a\\u001b[31m" in text
    assert len(text.splitlines()) == 2  # the header and one row: the newline in the key is escaped
