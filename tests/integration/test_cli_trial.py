"""config-audit as a fresh-clone trial found it (#16/#17): every refusal one line, nothing sent to the
wrong place, nothing written that the trail would not audit (moto)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice.test import Client

from config_audit import cli
from config_audit.times import parse_time
from tests.conftest import CONFIGURATION, REGION, Stack, project_with
from tests.integration.test_cli import fails_with_one_line


def audit(stack: Stack, client: Client) -> None:
    assert client.lambda_.invoke("audit_producer", stack.new_event()).payload == {"batchItemFailures": []}


def configuration_items(stack: Stack) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = stack.dynamodb.scan(TableName=CONFIGURATION)["Items"]
    return items


# -- 1. --local and --endpoint never fall back to AWS ------------------------------------------


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "it is empty"),
        ("\n", "it is empty"),
        ("foo", "it is not http://HOST:PORT or https://HOST:PORT"),
        ("garbage", "it is not http://HOST:PORT or https://HOST:PORT"),
        ("http://127.0.0.1:99999", "its port is not a number from 1 to 65535"),
        ("http://127.0.0.1", "it names no port"),
    ],
)
def test_a_local_endpoint_file_that_is_no_url_is_one_line_and_nothing_reaches_aws(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    content: str, problem: str,
) -> None:  # fmt: skip
    # GIVEN a .local/endpoint that names no server, and AWS (moto here) reachable with the default credentials
    (tmp_path / "endpoint").write_text(content)
    monkeypatch.setenv("LOCAL_STATE_DIR", str(tmp_path))
    # WHEN the operator writes with --local
    line = fails_with_one_line(capsys, ["--local", "put", "K", "1"])
    # THEN the line names the file, what is wrong and the fix, and AWS received nothing
    assert line == (
        f"config-audit: {tmp_path / 'endpoint'} does not hold a moto server's URL ({problem}): "
        "remove it and start `make run`, or give --endpoint URL"
    )
    assert configuration_items(stack) == []


def test_a_local_endpoint_that_is_a_directory_is_one_line_and_nothing_reaches_aws(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "endpoint").mkdir()
    monkeypatch.setenv("LOCAL_STATE_DIR", str(tmp_path))
    line = fails_with_one_line(capsys, ["--local", "put", "K", "1"])
    assert line.startswith(f"config-audit: {tmp_path / 'endpoint'} cannot be read (Is a directory): ")
    assert configuration_items(stack) == []


@pytest.mark.parametrize(
    ("endpoint", "problem"),
    [
        ("", "it is empty"),
        ("foo", "it is not http://HOST:PORT or https://HOST:PORT"),
        ("garbage", "it is not http://HOST:PORT or https://HOST:PORT"),
        ("http://127.0.0.1:99999", "its port is not a number from 1 to 65535"),
        ("http://127.0.0.1:5000/path", "a server's URL has nothing after HOST:PORT"),
    ],
)
@pytest.mark.parametrize("local", [[], ["--local"]])
def test_an_endpoint_option_that_is_no_url_is_one_line_and_nothing_reaches_aws(
    stack: Stack, capsys: pytest.CaptureFixture[str], endpoint: str, problem: str, local: list[str]
) -> None:
    line = fails_with_one_line(capsys, [*local, "--endpoint", endpoint, "put", "K", "1"])
    assert line == (
        f"config-audit: --endpoint {endpoint!r} is not a moto server's URL ({problem}): "
        "give one such as http://127.0.0.1:5000"
    )
    assert configuration_items(stack) == []


# -- 7. where --local looked ------------------------------------------------------------------


def test_local_outside_the_checkout_says_where_it_looked_and_how_to_name_the_checkout(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LOCAL_STATE_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # cd /tmp while `make run` serves the checkout
    line = fails_with_one_line(capsys, ["--local", "history", "K"])
    assert line == (
        f"config-audit: no local stack is running for {tmp_path} (looked for {tmp_path}/.local/endpoint): "
        "start `make run` in the checkout, or name the checkout `make run` serves with --project-dir, "
        "or give --endpoint URL"
    )


# -- 2. a project or a value that would have been a traceback --------------------------------


def project(tmp_path: Path, config: str) -> Path:
    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / "config.json").write_text(config)
    return tmp_path


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("{not json", "config.json is not JSON: Expecting property name"),
        ("[]", "config.json is not a Chalice config: it holds no JSON object"),
        ('{"stages": []}', "stage 'dev' is not in"),
        ('{"stages": {"dev": 5}}', "config.json: stage 'dev' is not a JSON object"),
        (
            '{"stages": {"dev": {"environment_variables": []}}}',
            "the environment_variables of stage 'dev' are not a JSON object",
        ),
        (
            '{"stages": {"dev": {"environment_variables": {"AUDIT_TABLE_NAME": 5}}}}',
            "AUDIT_TABLE_NAME of stage 'dev' is 5, not a string",
        ),
        ("[" * 100_000, "config.json is not a Chalice config: it is nested too deep"),
    ],
)
def test_a_project_config_chalice_could_not_read_is_one_line(
    aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], config: str, message: str
) -> None:
    line = fails_with_one_line(capsys, ["--project-dir", str(project(tmp_path, config)), "history", "K"])
    assert message in line and str(tmp_path) in line


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        (["AUDIT_TABLE_NAME"], "AUDIT_TABLE_NAME is not set"),
        (["CONFIGURATION_TABLE_NAME"], "CONFIGURATION_TABLE_NAME is not set"),
        (
            ["CONFIGURATION_TABLE_NAME", "AUDIT_TABLE_NAME"],
            "CONFIGURATION_TABLE_NAME is not set; AUDIT_TABLE_NAME is not set",
        ),
    ],
)
def test_a_stage_without_its_tables_is_one_line_naming_every_missing_variable(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str], missing: list[str], message: str
) -> None:
    copy = project_with(tmp_path, **dict.fromkeys(missing))
    line = fails_with_one_line(capsys, ["--project-dir", copy, "put", "K", "1"])
    assert line == (
        "config-audit: the stage's environment_variables in .chalice/config.json are incomplete: " + message
    )
    assert configuration_items(stack) == []


def nested(levels: int, innermost: str = "1") -> str:
    """A JSON map nested ``levels`` deep: {"a":{"a":...1...}}."""
    return '{"a":' * levels + innermost + "}" * levels


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["put", "K", "[" * 500 + "]" * 500], "attribute 'value' is nested deeper than DynamoDB's 32 levels"),
        (["put", "K", "[" * 100_000 + "]" * 100_000], "attribute 'value' is nested deeper than DynamoDB's 32 levels"),
        (["put", "K", "[" * 33 + "]" * 33], "attribute 'value' is nested deeper than DynamoDB's 32 levels"),
        (["put", "K", "1", "--set", f"a={nested(500)}"], "attribute 'a' is nested deeper than DynamoDB's 32 levels"),
        (["put", "K", "1", "--set", f"a={nested(32)}"], "attribute 'a' is nested deeper than DynamoDB's 32 levels"),
        (["put", "K", '{"": 1}'], "attribute 'value' cannot be stored: value has a member with an empty name"),
        (
            ["put", "K", "1", "--set", 'config={"servers": [{"": 1}]}'],
            "attribute 'config' cannot be stored: config.servers[0] has a member with an empty name",
        ),
    ],
)
def test_a_value_dynamodb_would_refuse_is_refused_before_writing(
    stack: Stack, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    line = fails_with_one_line(capsys, argv)
    assert line == f"config-audit: {message}"
    assert configuration_items(stack) == []


def test_a_value_32_levels_deep_is_written_and_audited(
    stack: Stack, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN values exactly as deep as DynamoDB allows: 32 levels, the attribute itself the first
    assert cli.main(["put", "K", "[" * 32 + "]" * 32, "--set", f"a={nested(31)}"]) == 0
    # THEN they are written, and the trail audits the change
    audit(stack, client)
    assert {entry["itemKey"] for entry in stack.audit_entries()} == {"K"}


# -- 3. text that is not UTF-8, and keys longer than a key can be ---------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["put", "\udcff", "1"], "KEY is not UTF-8 text (the byte 0xff is not UTF-8): DynamoDB keeps text as UTF-8"),
        (["history", "K\udcff"], "KEY is not UTF-8 text (the byte 0xff is not UTF-8)"),
        (["delete", "\udce9t\udce9"], "KEY is not UTF-8 text (the byte 0xe9 is not UTF-8)"),
        (["at", "\udcff", "2024-09-11T09:03:00Z"], "KEY is not UTF-8 text"),
        (["put", "K", "\udcff"], "VALUE is not UTF-8 text (the byte 0xff is not UTF-8)"),
        (["put", "K", "1", "--set", "n\udcff=1"], "--set 'n\\udcff=1' is not UTF-8 text (the byte 0xff is not UTF-8)"),
        (
            ["put", "K", '"\\ud800"'],
            "attribute 'value' cannot be stored: value is not UTF-8 text (it holds the lone surrogate",
        ),
        (["put", "x" * 2049, "1"], "key is longer than 2,048 bytes, so no configuration item can have it"),
        (["history", "é" * 1025], "key is longer than 2,048 bytes, so no configuration item can have it"),
    ],
)
def test_text_that_is_not_utf8_and_a_key_too_long_are_refused_in_one_line(
    stack: Stack, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    line = fails_with_one_line(capsys, argv)
    assert line.startswith(f"config-audit: {message}")
    assert configuration_items(stack) == []


def test_a_key_of_2048_bytes_is_written(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["put", "é" * 1024, "1"]) == 0
    assert [item["key"]["S"] for item in configuration_items(stack)] == ["é" * 1024]


# -- 5. times before the year 1000 -------------------------------------------------------------


@pytest.mark.parametrize("year", ["0001", "0999", "1000"])
def test_a_time_is_written_with_a_four_digit_year(year: str) -> None:
    assert parse_time(f"{year}-01-01T00:00:00Z") == f"{year}-01-01T00:00:00.000Z"
    assert parse_time(f"{year}-06-30T12:00:00.5+00:00") == f"{year}-06-30T12:00:00.500Z"


@pytest.fixture
def created(stack: Stack, client: Client) -> str:
    """K created with value 1 and audited: the time of its entry."""
    stack.put("K", value=1)
    audit(stack, client)
    time: str = stack.audit_entries()[0]["modificationTime"]
    return time


@pytest.mark.parametrize("year", ["0001", "0999", "1000"])
def test_a_time_before_the_year_1000_is_before_every_change(
    stack: Stack, client: Client, created: str, year: str, capsys: pytest.CaptureFixture[str]
) -> None:
    early = f"{year}-01-01T00:00:00Z"
    capsys.readouterr()
    assert cli.main(["at", "K", early]) == 0
    assert capsys.readouterr().out == f"'K' did not exist at {year}-01-01T00:00:00.000Z\n"
    assert cli.main(["diff", "K", early, created]) == 0
    assert capsys.readouterr().out == '+ created: {"key": "K", "value": 1}\n'
    assert cli.main(["rollback", "K", "--to", early, "--yes"]) == 0
    assert (
        capsys.readouterr().out
        == '- deleted: {"key": "K", "value": 1}\n' + "deleted 'K': it did not exist at that time\n"
    )
    assert configuration_items(stack) == []


# -- 6. the rollback's question -----------------------------------------------------------------


class Terminal:
    """stdin as the operator's terminal (or not one): what it answers, line by line."""

    def __init__(self, *answers: str, tty: bool = True) -> None:
        self.answers, self.tty, self.asked = list(answers), tty, 0

    def isatty(self) -> bool:
        return self.tty

    def readline(self) -> str:
        self.asked += 1
        assert self.tty, "read an answer from a stdin that is not a terminal"
        return self.answers.pop(0) if self.answers else ""


@pytest.fixture
def changed(stack: Stack, client: Client, created: str) -> str:
    """K changed from 1 to 2 since ``created``: the time to roll back to."""
    stack.put("K", value=2)
    audit(stack, client)
    return created


def value_of_k(stack: Stack) -> Any:
    item = boto3.resource("dynamodb", region_name=REGION).Table(CONFIGURATION).get_item(Key={"key": "K"})["Item"]
    return item["value"]


def test_the_rollback_asks_on_stderr_and_stdout_holds_only_the_answer(
    stack: Stack, changed: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", Terminal("y\n"))
    capsys.readouterr()
    assert cli.main(["rollback", "K", "--to", changed]) == 0
    out, err = capsys.readouterr()
    assert out == "~ value: 2 -> 1\nrolled 'K' back\n"
    assert err == f"roll 'K' back to {changed}? [y/N] "
    assert value_of_k(stack) == 1


@pytest.mark.parametrize("answer", ["", "n\n", "\n"])
def test_a_rollback_not_answered_yes_writes_nothing(
    stack: Stack, changed: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], answer: str
) -> None:
    monkeypatch.setattr("sys.stdin", Terminal(answer))  # "": the input ended (EOF)
    capsys.readouterr()
    assert cli.main(["rollback", "K", "--to", changed]) == 1
    out, err = capsys.readouterr()
    assert out == "~ value: 2 -> 1\n"
    assert err == f"roll 'K' back to {changed}? [y/N] config-audit: not confirmed: nothing written\n"
    assert value_of_k(stack) == 2


def test_a_rollback_with_no_terminal_to_ask_refuses_at_once(
    stack: Stack, changed: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stdin = Terminal("y\n", tty=False)  # a pipe or a job: whatever it holds is no operator's answer
    monkeypatch.setattr("sys.stdin", stdin)
    line = fails_with_one_line(capsys, ["rollback", "K", "--to", changed])
    assert line == "config-audit: not confirmed: nothing written; give --yes to roll back without asking"
    assert stdin.asked == 0 and value_of_k(stack) == 2
    # AND --yes is how a job rolls back
    assert cli.main(["rollback", "K", "--to", changed, "--yes"]) == 0
    assert value_of_k(stack) == 1


# -- 8. VALUE given again with --set ---------------------------------------------------------


def test_setting_value_again_says_it_is_value(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    line = fails_with_one_line(capsys, ["put", "K1", "v", "--set", "value=2"])
    assert line == "config-audit: --set cannot set 'value': VALUE is the item's 'value', given once after KEY"


# -- 9. --help is plain text, with each argument explained --------------------------------------


def help_of(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as done:
        cli.main([*argv, "--help"])
    assert done.value.code == 0
    out: str = capsys.readouterr().out
    return out


def test_help_is_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_of(capsys)
    assert "``" not in text and "--stage" in text and "--project-dir" in text
    for command in cli.COMMANDS:
        assert f"    {command}" in text


@pytest.mark.parametrize(
    ("command", "explained"),
    [
        ("history", ["Every change of KEY", "KEY  "]),
        ("at", ["The item KEY held at TIME", "TIME  ", "ISO 8601 with a zone"]),
        ("diff", ["What changed in KEY between FROM and TO", "FROM  ", "TO  ", "the earlier time"]),
        ("rollback", ["Write KEY back", "--to TIME", "--yes", "ISO 8601 with a zone"]),
        ("put", ["VALUE  ", "--set NAME=VALUE", "JSON"]),
        ("delete", ["Delete the item KEY"]),
    ],
)
def test_each_command_has_a_description_and_its_arguments_explained(
    capsys: pytest.CaptureFixture[str], command: str, explained: list[str]
) -> None:
    text = help_of(capsys, command)
    assert "``" not in text
    assert "KEY  " in text and " ".join(cli.KEY_HELP.split()) in " ".join(text.split())  # as argparse wraps it
    for words in explained:
        assert words in text, words
