"""`config-audit changes` against moto and the real time index: the incident question answered
from the CLI as GET /changes answers it, with who made each change."""

from __future__ import annotations

import csv
import io
import json
import warnings
from decimal import Decimal

import pytest
from chalice.test import Client

from config_audit import cli
from tests.conftest import Stack

pytestmark = pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")


def out(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()  # the function's own output while auditing
    assert cli.main(list(argv)) == 0
    printed, err = capsys.readouterr()
    assert err == ""
    return printed


def changes_body(client: Client, query: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        response = client.http.get(f"/changes?{query}")
    assert response.status_code == 200, response.body
    body: str = response.body.decode()
    return body


@pytest.fixture
def incident(stack: Stack, client: Client) -> None:
    """Three keys changed by a stamped writer, one deleted: audited through the function."""
    stack.put("CACHE_TTL_SEC", value=3600, modifiedBy="deploy-bot")
    stack.put("CACHE_TTL_SEC", value=1800, modifiedBy="alice")
    stack.put("MAX_CONNECTIONS", value=100, note='a,"b"\nc ü', modifiedBy="deploy-bot")
    stack.put("OLD_FLAG", value=True)
    stack.delete("OLD_FLAG")
    assert client.lambda_.invoke("audit_producer", stack.new_event()).payload == {"batchItemFailures": []}


def test_changes_json_lines_are_exactly_the_get_changes_body_entries(
    incident: None, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = out(capsys, "changes", "--since", "1h", "--output", "json").splitlines()
    # the same window, given to both as times (GET /changes takes ISO 8601)
    times = [json.loads(line)["modificationTime"] for line in lines]
    assert len(lines) == 5 and times == sorted(times, reverse=True)
    # [first, the last + 0.9 ms): a bound between two milliseconds is read as the API reads it
    start, end = min(times), max(times)[:-1] + "9Z"
    window = out(capsys, "changes", "--from", start, "--to", end, "--output", "json").splitlines()
    body = changes_body(client, f"from={start}&to={end}&limit=1000")
    assert f'{{"entries":[{",".join(window)}],"next":null}}' == body
    assert window == lines


def test_changes_answers_the_incident_question_with_who_made_each_change(
    incident: None, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = out(capsys, "changes", "--since", "1h").splitlines()[2:]
    assert [row.split()[1:4] for row in rows][-1] == ["Configuration", "CACHE_TTL_SEC", "created"]
    assert (
        sum("deploy-bot (declared)" in row for row in rows) == 2 and sum("alice (declared)" in row for row in rows) == 1
    )
    by_alice = out(capsys, "changes", "--since", "1h", "--by", "alice", "--output", "json").splitlines()
    assert [(json.loads(line)["itemKey"], json.loads(line)["newValue"]) for line in by_alice] == [
        ("CACHE_TTL_SEC", 1800)
    ]
    header, *deleted = csv.reader(
        io.StringIO(out(capsys, "changes", "--kind", "deleted", "--output", "csv"), newline="")
    )
    assert [dict(zip(header, row, strict=True))["key"] for row in deleted] == ["OLD_FLAG"]
    [note] = [json.loads(line, parse_int=Decimal) for line in out(capsys, "changes", "--output", "json", "--limit", "5").splitlines()
              if json.loads(line)["itemKey"] == "MAX_CONNECTIONS"]  # fmt: skip
    assert note["newValue"]["note"] == 'a,"b"\nc ü' and note["tableName"] == "Configuration"


def test_an_unknown_table_is_one_line_listing_the_audited_tables(
    incident: None, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert cli.main(["changes", "--table", "Orders"]) == 1
    printed, err = capsys.readouterr()
    assert (
        printed == ""
        and err == "config-audit: table 'Orders' is not audited here: AUDITED_TABLES names 'Configuration'\n"
    )
