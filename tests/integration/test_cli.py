"""config-audit against moto: history with who, at, diff, a guarded rollback, and clear refusals."""

from __future__ import annotations

import datetime as dt
import os
import socket
import unicodedata
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice.test import Client

from chalicelib.actors.cloudtrail import calls_in
from config_audit import cli
from config_audit.errors import NotDone
from config_audit.rollback import plan_rollback, write_back
from config_audit.times import parse_time
from config_audit.trail import Trail
from local.cloudtrail import CloudTrailPlayer, identity_of
from tests.conftest import REGION, STAGE, Stack


def audit(stack: Stack, client: Client) -> None:
    assert client.lambda_.invoke("audit_producer", stack.new_event()).payload == {"batchItemFailures": []}


def run(*argv: str, ask: str = "n") -> str:
    answer = cli.run(cli.parser().parse_args(["--stage", "dev", *argv]), ask=lambda _prompt: ask)
    assert isinstance(answer, str), answer  # exit status 0
    return answer


def times(stack: Stack) -> list[str]:
    return [entry["modificationTime"] for entry in stack.audit_entries()]


@pytest.fixture
def lifecycle(stack: Stack, client: Client) -> list[str]:
    """CACHE_TTL_SEC created (3600, stamped), changed to 1800, described: the times of the three entries."""
    stack.put("CACHE_TTL_SEC", value=3600, modifiedBy="deploy-bot")
    stack.put("CACHE_TTL_SEC", value=1800, modifiedBy="deploy-bot")
    stack.put("CACHE_TTL_SEC", value=1800, description="seconds", modifiedBy="deploy-bot")
    audit(stack, client)
    return times(stack)


def test_history_is_oldest_first_with_who_made_each_change(lifecycle: list[str]) -> None:
    lines = run("history", "CACHE_TTL_SEC").splitlines()
    assert lines[0].split() == ["time", "key", "change", "who", "old", "->", "new"]
    assert [line.split()[2] for line in lines[2:]] == ["created", "updated", "updated"]
    assert all("deploy-bot (declared)" in line for line in lines[2:])
    assert "3600 -> 1800" in lines[3]


def test_at_replays_the_item_as_of_a_time(lifecycle: list[str]) -> None:
    assert (
        run("at", "CACHE_TTL_SEC", lifecycle[0])
        == '{"key": "CACHE_TTL_SEC", "modifiedBy": "deploy-bot", "value": 3600}'
    )
    before = "2000-01-01T00:00:00Z"
    assert run("at", "CACHE_TTL_SEC", before) == "'CACHE_TTL_SEC' did not exist at 2000-01-01T00:00:00.000Z"


def test_diff_says_what_changed_between_two_times(lifecycle: list[str]) -> None:
    assert run("diff", "CACHE_TTL_SEC", lifecycle[0], lifecycle[2]).splitlines() == [
        '+ description: "seconds"',
        "~ value: 3600 -> 1800",
    ]
    assert run("diff", "CACHE_TTL_SEC", "2000-01-01T00:00:00Z", lifecycle[0]).startswith("+ created: ")


def test_a_rollback_shows_the_difference_writes_it_and_is_audited_itself(
    stack: Stack, client: Client, lifecycle: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # WHEN the operator rolls back to the first entry, and confirms
    said = run("rollback", "CACHE_TTL_SEC", "--to", lifecycle[0], ask="y")
    # THEN it showed what would change, and wrote it
    shown = capsys.readouterr().out.splitlines()
    assert shown == ['- description: "seconds"', "~ value: 1800 -> 3600"]
    assert said == "rolled 'CACHE_TTL_SEC' back"
    item = boto3.resource("dynamodb", region_name=REGION).Table("Configuration").get_item(Key={"key": "CACHE_TTL_SEC"})
    assert item["Item"]["value"] == 3600 and "description" not in item["Item"]
    assert item["Item"]["modifiedBy"] == boto3.client("sts", region_name=REGION).get_caller_identity()["Arn"]
    # AND the rollback is a change like any other: audited, by the operator's stamp
    audit(stack, client)
    last = stack.audit_entries()[-2:]
    assert {e.get("updatedAttribute") for e in last} == {"value", "description"}


def test_rolling_back_to_before_the_key_existed_deletes_it(stack: Stack, client: Client, lifecycle: list[str]) -> None:
    assert run("rollback", "CACHE_TTL_SEC", "--to", "2000-01-01T00:00:00Z", "--yes") == (
        "deleted 'CACHE_TTL_SEC': it did not exist at that time"
    )
    audit(stack, client)
    assert "newValue" not in stack.audit_entries()[-1] and "oldValue" in stack.audit_entries()[-1]


def test_a_rollback_refuses_when_the_item_is_not_what_its_history_says(stack: Stack, lifecycle: list[str]) -> None:
    stack.put("CACHE_TTL_SEC", value=60)  # written, but not audited yet
    with pytest.raises(NotDone, match=r"not what its history says it is now \(differs in: .*value"):
        run("rollback", "CACHE_TTL_SEC", "--to", lifecycle[0], "--yes")
    table = boto3.resource("dynamodb", region_name=REGION).Table("Configuration")
    assert table.get_item(Key={"key": "CACHE_TTL_SEC"})["Item"]["value"] == 60  # nothing written


def test_a_rollback_refuses_without_confirmation(stack: Stack, lifecycle: list[str]) -> None:
    with pytest.raises(NotDone, match="not confirmed: nothing written"):
        run("rollback", "CACHE_TTL_SEC", "--to", lifecycle[0], ask="")


def test_a_rollback_never_writes_a_digest_back_as_a_secret(stack: Stack, client: Client) -> None:
    stack.put("DB", host="a", dbPassword="first-secret")
    audit(stack, client)
    first = times(stack)[0]
    stack.put("DB", host="b", dbPassword="second-secret")
    audit(stack, client)
    with pytest.raises(NotDone, match="'dbPassword' held a secret at that time, redacted in the history"):
        run("rollback", "DB", "--to", first, "--yes")
    # a secret that did not change since then is kept as the table holds it
    stack.put("DB", host="c", dbPassword="second-secret")
    audit(stack, client)
    second = times(stack)[-1]
    stack.put("DB", host="d", dbPassword="second-secret")
    audit(stack, client)
    assert run("rollback", "DB", "--to", second, "--yes") == "rolled 'DB' back"
    item = boto3.resource("dynamodb", region_name=REGION).Table("Configuration").get_item(Key={"key": "DB"})["Item"]
    assert (item["host"], item["dbPassword"]) == ("c", "second-secret")


def test_a_write_in_between_makes_the_rollback_refuse_and_write_nothing(stack: Stack, lifecycle: list[str]) -> None:
    trail = Trail(STAGE["environment_variables"], {"region_name": REGION})
    plan = plan_rollback(trail, "CACHE_TTL_SEC", lifecycle[0])
    stack.put("CACHE_TTL_SEC", value=5)  # someone writes after the plan, before the write
    with pytest.raises(NotDone, match="changed while rolling back: nothing written"):
        write_back(trail, "CACHE_TTL_SEC", plan.current, plan.target, operator=None)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["history", "NEVER_SET"], "no history for 'NEVER_SET'"),
        (["at", "CACHE_TTL_SEC", "yesterday"], "time 'yesterday' is not ISO 8601"),
        (["at", "CACHE_TTL_SEC", "2024-09-11T09:03:00"], "has no zone"),
        (["at", "CACHE_TTL_SEC", "2999-01-01T00:00:00Z"], "is in the future"),
        (["rollback", "NEVER_SET", "--to", "2024-09-11T09:03:00Z", "--yes"], "no history for 'NEVER_SET'"),
        (["--stage", "nowhere", "history", "K"], "stage 'nowhere' is not in /"),  # the project's config, by path
        (["--project-dir", "/nonexistent", "history", "K"], "/nonexistent/.chalice/config.json does not exist"),
        (
            ["diff", "CACHE_TTL_SEC", "2024-09-11T10:00:00Z", "2024-09-11T09:00:00Z"],
            "FROM 2024-09-11T10:00:00.000Z is after TO",
        ),
    ],
)
def test_bad_arguments_get_one_line_and_a_non_zero_exit(
    lifecycle: list[str], argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("config-audit: ") and message in line


def test_times_are_read_with_their_zone_to_the_millisecond() -> None:
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    assert parse_time("2024-09-11T11:03:00.25+02:00", now) == "2024-09-11T09:03:00.250Z"
    assert parse_time("2024-09-11T09:03:00Z", now) == "2024-09-11T09:03:00.000Z"


def test_the_local_cloudtrail_delivers_each_successful_write_as_cloudtrail_would(stack: Stack) -> None:
    delivered: list[dict[str, Any]] = []
    client = boto3.client("dynamodb", region_name=REGION)
    CloudTrailPlayer(delivered.append, identity_of(boto3.client("sts", region_name=REGION)), REGION).attach(client)
    client.put_item(TableName="Configuration", Item={"key": {"S": "K"}, "value": {"N": "1"}})
    table = boto3.resource("dynamodb", region_name=REGION).Table("Configuration")
    CloudTrailPlayer(delivered.append, identity_of(boto3.client("sts", region_name=REGION)), REGION).attach(
        table.meta.client
    )
    table.update_item(Key={"key": "J"}, UpdateExpression="SET v = :v", ExpressionAttributeValues={":v": 2})
    with pytest.raises(client.exceptions.ConditionalCheckFailedException):  # a failed call changed nothing
        client.delete_item(TableName="Configuration", Key={"key": {"S": "K"}}, ConditionExpression="attribute_not_exists(#k)",
                           ExpressionAttributeNames={"#k": "key"})  # fmt: skip
    client.get_item(TableName="Configuration", Key={"key": {"S": "K"}})  # a read is no data event of a write
    assert [[c.item_key for c in calls_in(event, "Configuration")] for event in delivered] == [["K"], ["J"]]
    assert {e["detail"]["userIdentity"]["arn"] for e in delivered} == {
        boto3.client("sts", region_name=REGION).get_caller_identity()["Arn"]
    }


# -- issue #16: what an operator found trying it ------------------------------------------------


def fails_with_one_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """main() fails: exit status 1, nothing on stdout, one line on stderr (no traceback); the line."""
    capsys.readouterr()  # what the function printed while auditing the set-up is not the CLI's
    assert cli.main(argv) == 1
    out, err = capsys.readouterr()
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith("config-audit: ") and "Traceback" not in line
    return line


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_a_server_that_does_not_answer_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    line = fails_with_one_line(capsys, ["--endpoint", endpoint, "history", "K"])
    assert line == f"config-audit: nothing answers at {endpoint}: is the moto server running there?"


def test_a_stale_local_endpoint_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN .local/endpoint left behind by a `make run` that is gone
    stale = tmp_path / "endpoint"
    stale.write_text(f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("LOCAL_STATE_DIR", str(tmp_path))
    line = fails_with_one_line(capsys, ["--local", "put", "K", "1"])
    assert f"the local stack in {stale} does not answer" in line and "start `make run`" in line


@pytest.mark.parametrize("time", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00"])
def test_a_time_outside_the_format_range_is_one_line(aws: None, time: str, capsys: pytest.CaptureFixture[str]) -> None:
    line = fails_with_one_line(capsys, ["at", "K", time])
    assert f"time {time!r} is outside the times the history holds" in line


@pytest.fixture
def no_aws_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An operator's shell with no AWS_* variables and an empty home: no credentials, no region."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # not on EC2: no need to wait for IMDS to say so
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # a fresh process: no credentials resolved before


def test_missing_region_against_aws_is_one_line(no_aws_configuration: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert "no AWS region" in fails_with_one_line(capsys, ["history", "K"])


def test_missing_credentials_against_aws_is_one_line(
    no_aws_configuration: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    assert "no AWS credentials found" in fails_with_one_line(capsys, ["history", "K"])


def test_a_usage_error_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["history"])
    assert exit_.value.code == 2
    out, err = capsys.readouterr()
    assert (
        out == ""
        and err == "config-audit history: the following arguments are required: KEY (see config-audit history --help)\n"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--local", "--stage", "prod", "history", "S"],
        ["history", "S", "--local", "--stage", "prod"],
        ["--stage", "prod", "history", "--local", "S"],
    ],
)
def test_the_connection_options_go_before_or_after_the_command(argv: list[str]) -> None:
    args = cli.parser().parse_args(argv)
    assert (args.command, args.key, args.local, args.stage, args.endpoint) == ("history", "S", True, "prod", None)


def test_the_connection_options_keep_their_defaults_when_not_given() -> None:
    args = cli.parser().parse_args(["history", "S", "--endpoint", "http://127.0.0.1:1"])
    assert (args.local, args.stage, args.endpoint) == (False, None, "http://127.0.0.1:1")
    assert cli.chosen_stage(args) == "dev"  # no stage given and not --local: dev, as ever


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["put", "K", "1", "--set", "=5"], "--set '=5' has no attribute name before '='"),
        (["put", "K", "1", "--set", "noequals"], "--set 'noequals' has no '='"),
        (["put", "K", "1", "--set", "key=other"], "--set cannot change 'key', the item's key"),
        (["put", "K", "1", "--set", "value=2"], "--set cannot set 'value': VALUE is the item's 'value'"),
        (["put", "K", "1", "--set", "a=1", "--set", "a=2"], "attribute 'a' is given twice"),
        (["put", "K", "1e400"], "attribute 'value' holds a number DynamoDB cannot store exactly"),
        (["put", "", "1"], "KEY is empty"),
        (["delete", ""], "KEY is empty"),
        (["history", ""], "KEY is empty"),
        (["at", "", "2024-09-11T09:03:00Z"], "KEY is empty"),
        (["diff", "", "2024-09-11T09:03:00Z", "2024-09-11T09:04:00Z"], "KEY is empty"),
        (["rollback", "", "--to", "2024-09-11T09:03:00Z", "--yes"], "KEY is empty"),
    ],
)
def test_a_malformed_put_or_an_empty_key_is_refused_and_nothing_is_written(
    stack: Stack, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert message in fails_with_one_line(capsys, argv)
    assert stack.dynamodb.scan(TableName="Configuration")["Items"] == []


def has_control_characters(text: str) -> bool:
    return any(unicodedata.category(character) == "Cc" for character in text)


def test_stored_text_never_reaches_the_terminal_as_control_characters(
    stack: Stack, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a key, a value, an attribute name and a stamped actor, each with a newline and a colour
    red = "\n\x1b[31m"
    key = f"K{red}"
    stack.put(key, value=f"v{red}", modifiedBy=f"bot{red}")
    stack.put(key, value=f"w{red}", modifiedBy=f"bot{red}", **{f"note{red}": 1})
    audit(stack, client)
    first, second = times(stack)[0], times(stack)[-1]
    capsys.readouterr()  # the function's own output while auditing
    # WHEN the operator reads its history, an item and a diff
    assert cli.main(["history", key]) == 0
    history = capsys.readouterr().out.splitlines()
    assert cli.main(["at", key, first]) == 0
    assert cli.main(["diff", key, first, second]) == 0
    rest = capsys.readouterr().out.splitlines()
    # THEN every line is one line of plain text: header, rule, and one row per change
    assert len(history) == 2 + 3  # created, updated value, updated note
    assert not any(has_control_characters(line) for line in history + rest)
    assert all("K\\n\\u001b[31m" in row and "bot\\n\\u001b[31m (declared)" in row for row in history[2:])
    assert '"w\\n\\u001b[31m"' in history[-1] or '"w\\n\\u001b[31m"' in history[-2]
    assert rest[0] == '{"key": "K\\n\\u001b[31m", "modifiedBy": "bot\\n\\u001b[31m", "value": "v\\n\\u001b[31m"}'
    assert "+ note\\n\\u001b[31m: 1" in rest


def test_messages_never_pass_control_characters(
    stack: Stack, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    red = "\n\x1b[31m"
    key = f"K{red}"
    stack.put(key, value=1)
    audit(stack, client)
    first = times(stack)[0]
    capsys.readouterr()
    assert cli.main(["at", key, "2000-01-01T00:00:00Z"]) == 0
    [said] = capsys.readouterr().out.splitlines()
    assert said == "'K\\n\\x1b[31m' did not exist at 2000-01-01T00:00:00.000Z"
    stack.put(key, value=1, **{f"x{red}": 2})  # written around the trail: the rollback refuses, naming it
    line = fails_with_one_line(capsys, ["rollback", key, "--to", first, "--yes"])
    assert not has_control_characters(line) and "differs in: 'x\\n\\x1b[31m'" in line


def configuration_item(key: str) -> dict[str, Any] | None:
    """The item the Configuration table holds for ``key`` now, as Python values."""
    item: dict[str, Any] | None = (
        boto3.resource("dynamodb", region_name=REGION).Table("Configuration").get_item(Key={"key": key}).get("Item")
    )
    return item


SECRET_SHAPES = {  # (the attribute at TIME, where its secret sits, the attribute now with the same secret)
    "map": ({"host": "a", "password": "p1"}, "config.password", {"host": "b", "password": "p1"}),
    "list of maps": ([{"host": "a", "password": "p1"}], "config[0].password", [{"host": "b", "password": "p1"}]),
    "deep": (
        {"db": {"replicas": [{"apiKey": "k1"}]}},
        "config.db.replicas[0].apiKey",
        {"db": {"replicas": [{"apiKey": "k1"}], "pool": 5}},
    ),
}


@pytest.mark.parametrize("shape", SECRET_SHAPES)
def test_a_rollback_never_writes_a_digest_back_inside_a_map_or_a_list_of_maps(
    stack: Stack, client: Client, shape: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a secret nested in an attribute at TIME, and the attribute gone since
    then, path, _ = SECRET_SHAPES[shape]
    stack.put("DB", value=1, config=then)
    audit(stack, client)
    first = times(stack)[0]
    stack.put("DB", value=2)
    audit(stack, client)
    # WHEN the operator rolls back to TIME
    line = fails_with_one_line(capsys, ["rollback", "DB", "--to", first, "--yes"])
    # THEN it refuses, naming where the secret sits, and writes nothing (no digest in the table)
    assert f"'{path}' held a secret at that time, redacted in the history" in line
    assert configuration_item("DB") == {"key": "DB", "value": 2}


@pytest.mark.parametrize("shape", SECRET_SHAPES)
def test_a_nested_secret_unchanged_since_the_time_is_kept_from_the_table(
    stack: Stack, client: Client, shape: str, capsys: pytest.CaptureFixture[str]
) -> None:
    then, _, now = SECRET_SHAPES[shape]
    stack.put("DB", value=1, config=then)
    audit(stack, client)
    first = times(stack)[0]
    stack.put("DB", value=2, config=now)  # the secret is the same, what is around it changed
    audit(stack, client)
    assert run("rollback", "DB", "--to", first, "--yes") == "rolled 'DB' back"
    item = configuration_item("DB")
    assert item is not None and (item["value"], item["config"]) == (1, then)  # the table's plain secret
    # AND the difference it showed is the history's: the secret as its digest, never in plain
    shown = capsys.readouterr().out
    assert "redacted:hmac-sha256:" in shown and "p1" not in shown and "k1" not in shown


@pytest.mark.parametrize(
    ("attributes", "path"),
    [({"dbPassword": "s1"}, "dbPassword"), ({"config": {"host": "a", "password": "p1"}}, "config.password")],
)
def test_a_rollback_to_before_a_deletion_refuses_to_restore_a_redacted_secret(
    stack: Stack, client: Client, attributes: dict[str, Any], path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.put("DB", value=1, **attributes)
    audit(stack, client)
    first = times(stack)[0]
    stack.delete("DB")
    audit(stack, client)
    line = fails_with_one_line(capsys, ["rollback", "DB", "--to", first, "--yes"])
    assert f"'{path}' held a secret at that time, redacted in the history" in line
    assert configuration_item("DB") is None


def someone_adds_an_attribute_after_the_read(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another writer sets 'extra' on the item right after the rollback read it, before it writes."""
    read = Trail.current

    def read_then_someone_writes(trail: Trail, key: str) -> Any:
        item = read(trail, key)
        stack.configuration.update_item(
            Key={"key": key}, UpdateExpression="SET extra = :x", ExpressionAttributeValues={":x": "theirs"}
        )
        return item

    monkeypatch.setattr(Trail, "current", read_then_someone_writes)


def test_a_write_adding_an_attribute_during_the_rollback_is_kept_and_reported(
    stack: Stack, lifecycle: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN another writer adds an attribute after the rollback read the item, before it writes
    someone_adds_an_attribute_after_the_read(stack, monkeypatch)
    capsys.readouterr()
    # WHEN the rollback writes
    assert cli.main(["rollback", "CACHE_TTL_SEC", "--to", lifecycle[0], "--yes"]) == 1
    # THEN their attribute survives, the rollback is done, and it says so with exit status 1
    [line] = capsys.readouterr().err.splitlines()
    assert "rolled 'CACHE_TTL_SEC' back, but a write in between added 'extra', which is kept" in line
    item = configuration_item("CACHE_TTL_SEC")
    assert item is not None and (item["value"], item["extra"]) == (3600, "theirs") and "description" not in item


def test_a_deletion_that_removes_an_attribute_added_meanwhile_says_so(
    stack: Stack, lifecycle: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    someone_adds_an_attribute_after_the_read(stack, monkeypatch)
    assert cli.main(["rollback", "CACHE_TTL_SEC", "--to", "2000-01-01T00:00:00Z", "--yes"]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert "deleted 'CACHE_TTL_SEC', but a write in between added 'extra', which the deletion removed" in line


def test_a_write_of_an_attribute_the_rollback_adds_back_makes_it_refuse(
    stack: Stack, client: Client, lifecycle: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the description (there at the third entry) removed since, and audited
    stack.put("CACHE_TTL_SEC", value=1800, modifiedBy="deploy-bot")
    audit(stack, client)
    trail = Trail(STAGE["environment_variables"], {"region_name": REGION})
    plan = plan_rollback(trail, "CACHE_TTL_SEC", lifecycle[2])
    # WHEN someone writes a description of their own before the rollback writes the old one back
    stack.configuration.update_item(
        Key={"key": "CACHE_TTL_SEC"},
        UpdateExpression="SET description = :d",
        ExpressionAttributeValues={":d": "theirs"},
    )
    with pytest.raises(NotDone, match="changed while rolling back: nothing written"):
        write_back(trail, "CACHE_TTL_SEC", plan.current, plan.target, operator=None)
    # THEN theirs stands
    item = configuration_item("CACHE_TTL_SEC")
    assert item is not None and item["description"] == "theirs"


def test_numbers_are_shown_digit_for_digit_never_through_a_float(stack: Stack, client: Client) -> None:
    from decimal import Decimal

    stack.put("PI", value=Decimal("3.1415926535897932384626433832"), tenth=Decimal("0.1"))
    audit(stack, client)
    [when] = times(stack)
    assert run("at", "PI", when) == '{"key": "PI", "tenth": 0.1, "value": 3.1415926535897932384626433832}'
    assert "3.1415926535897932384626433832" in run("history", "PI")
