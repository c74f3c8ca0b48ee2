"""Provisioning existing audited tables: adopted when every change can be audited (any key schema),
refused when none could (one line naming the table and the fix, exit status 1), their streams
turned on when asked; with AUDITED_TABLES, every pair's trail made and protected."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from infra.provision import main
from infra.tables import configuration_table, create_tables
from tests.conftest import ROOT

CONFIGURATION = "Configuration"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's .chalice, so provisioning leaves the repository alone."""
    shutil.copytree(ROOT / ".chalice", tmp_path / ".chalice", ignore=shutil.ignore_patterns("deploy*"))
    return tmp_path


def existing_table(
    dynamodb: Any, keys: list[tuple[str, str, str]], view: str | None, name: str = CONFIGURATION
) -> None:
    """A configuration table made by someone else: (name, type, HASH|RANGE) keys, a stream view or none."""
    options: dict[str, Any] = {}
    if view is not None:
        options["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view}
    dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": kind} for name, kind, _ in keys],
        KeySchema=[{"AttributeName": name, "KeyType": role} for name, _, role in keys],
        BillingMode="PAY_PER_REQUEST",
        **options,
    )


def provision(project: Path, *flags: str) -> int:
    return main(["--stage", "dev", "--project", str(project), *flags])


def stream_view(dynamodb: Any, name: str = CONFIGURATION) -> str | None:
    stream = dynamodb.describe_table(TableName=name)["Table"].get("StreamSpecification") or {}
    return stream.get("StreamViewType") if stream.get("StreamEnabled") else None


KEY = [("key", "S", "HASH")]
PK_SK = [("pk", "S", "HASH"), ("sk", "S", "RANGE")]
REFUSED = {
    "a KEYS_ONLY stream": (
        KEY,
        "KEYS_ONLY",
        "its stream carries KEYS_ONLY, not NEW_AND_OLD_IMAGES, and a view type cannot be changed in place: "
        "turn the stream off (aws dynamodb update-table --table-name Configuration "
        "--stream-specification StreamEnabled=false), then run provisioning again with --enable-stream",
    ),
    "a NEW_IMAGE stream": (KEY, "NEW_IMAGE", "its stream carries NEW_IMAGE, not NEW_AND_OLD_IMAGES"),
    "no stream": (
        KEY,
        None,
        "it has no stream: run provisioning again with --enable-stream to turn one on with NEW_AND_OLD_IMAGES",
    ),
}


@pytest.mark.parametrize(("keys", "view", "fix"), REFUSED.values(), ids=REFUSED.keys())
def test_a_table_whose_changes_would_all_be_poison_is_refused_in_one_line(
    dynamodb: Any,
    project: Path,
    capsys: pytest.CaptureFixture[str],
    keys: list[tuple[str, str, str]],
    view: str | None,
    fix: str,
) -> None:
    # GIVEN an existing Configuration table no entry could be made from
    existing_table(dynamodb, keys, view)
    config_before = (project / ".chalice" / "config.json").read_text()
    # WHEN the stage is provisioned
    status = provision(project)
    # THEN it exits 1 with one line naming the table and the fix, and nothing on stdout
    out, err = capsys.readouterr()
    assert (status, out) == (1, "")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("stage 'dev' not provisioned: table 'Configuration' cannot be audited: ")
    assert fix in err
    # AND nothing was created or recorded: the stage is not half-provisioned
    assert dynamodb.list_tables()["TableNames"] == [CONFIGURATION]
    assert (project / ".chalice" / "config.json").read_text() == config_before
    assert stream_view(dynamodb) == view


def test_a_table_whose_stream_was_turned_off_is_refused_not_given_its_old_stream(
    dynamodb: Any, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a table whose stream was on once: DynamoDB still reports that stream's ARN
    existing_table(dynamodb, KEY, "NEW_AND_OLD_IMAGES")
    dynamodb.update_table(TableName=CONFIGURATION, StreamSpecification={"StreamEnabled": False})
    assert dynamodb.describe_table(TableName=CONFIGURATION)["Table"]["LatestStreamArn"]
    # WHEN the stage is provisioned, THEN it is refused: that stream carries no new change
    assert provision(project) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert (
        "table 'Configuration' cannot be audited: it has no stream: run provisioning again with --enable-stream" in err
    )


def test_enable_stream_turns_on_both_images_on_a_table_without_a_stream(
    dynamodb: Any, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an existing Configuration table with the right key and no stream, holding a setting
    existing_table(dynamodb, KEY, None)
    dynamodb.put_item(TableName=CONFIGURATION, Item={"key": {"S": "max_connections"}, "value": {"N": "100"}})
    # WHEN the stage is provisioned with --enable-stream
    assert provision(project, "--enable-stream") == 0
    # THEN the table streams both images, and the stage records that stream
    described = dynamodb.describe_table(TableName=CONFIGURATION)["Table"]
    assert stream_view(dynamodb) == "NEW_AND_OLD_IMAGES"
    stage = json.loads((project / ".chalice" / "config.json").read_text())["stages"]["dev"]
    assert stage["environment_variables"]["CONFIGURATION_STREAM_ARN"] == described["LatestStreamArn"]
    out, err = capsys.readouterr()
    assert err == "" and f"tables ready; CONFIGURATION_STREAM_ARN = {described['LatestStreamArn']}" in out
    # AND the setting is still there: the table was adopted, not replaced
    assert dynamodb.get_item(TableName=CONFIGURATION, Key={"key": {"S": "max_connections"}})["Item"]["value"] == {
        "N": "100"
    }


def test_enable_stream_leaves_a_stream_of_another_view_type_as_it_was(
    dynamodb: Any, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing_table(dynamodb, KEY, "KEYS_ONLY")
    assert provision(project, "--enable-stream") == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "table 'Configuration' cannot be audited" in err
    # another reader's stream is not ended
    assert stream_view(dynamodb) == "KEYS_ONLY"


KEY_SCHEMAS = {
    f"{hash_type} hash" + (f", {range_type} range" if range_type else ""): [("Id", hash_type, "HASH")]
    + ([("Ver", range_type, "RANGE")] if range_type else [])
    for hash_type in ("S", "N", "B")
    for range_type in (None, "S", "N", "B")
}


@pytest.mark.parametrize("keys", KEY_SCHEMAS.values(), ids=KEY_SCHEMAS.keys())
def test_an_existing_table_of_any_key_schema_is_adopted(
    dynamodb: Any, project: Path, capsys: pytest.CaptureFixture[str], keys: list[tuple[str, str, str]]
) -> None:
    # GIVEN an existing Configuration table of a hash key of S, N or B, with or without a range key
    existing_table(dynamodb, keys, "NEW_AND_OLD_IMAGES")
    arn = dynamodb.describe_table(TableName=CONFIGURATION)["Table"]["LatestStreamArn"]
    # WHEN the stage is provisioned, THEN it is ready, and the stage records the table's stream
    assert provision(project) == 0
    out, err = capsys.readouterr()
    assert err == "" and out.splitlines()[0] == f"stage dev: tables ready; CONFIGURATION_STREAM_ARN = {arn}"
    described = dynamodb.describe_table(TableName=CONFIGURATION)["Table"]
    assert described["KeySchema"] == [{"AttributeName": name, "KeyType": role} for name, _, role in keys]


@pytest.mark.parametrize("keys", [KEY, PK_SK, [("Id", "N", "HASH")]], ids=["key", "pk/sk", "Id (N)"])
def test_enable_stream_turns_on_the_stream_of_a_table_of_any_key(
    dynamodb: Any, project: Path, keys: list[tuple[str, str, str]]
) -> None:
    existing_table(dynamodb, keys, None)
    assert provision(project, "--enable-stream") == 0
    assert stream_view(dynamodb) == "NEW_AND_OLD_IMAGES"


def test_a_good_existing_table_is_adopted_as_it_is(
    dynamodb: Any, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the Configuration table exists already, shaped as the SPEC says
    dynamodb.create_table(**configuration_table(CONFIGURATION))
    arn = dynamodb.describe_table(TableName=CONFIGURATION)["Table"]["LatestStreamArn"]
    # WHEN the stage is provisioned, THEN its stream is the stage's and the other tables are made
    assert provision(project) == 0
    stage = json.loads((project / ".chalice" / "config.json").read_text())["stages"]["dev"]
    assert stage["environment_variables"]["CONFIGURATION_STREAM_ARN"] == arn
    assert sorted(dynamodb.list_tables()["TableNames"]) == ["Audit", "AuditActors", CONFIGURATION]
    out, err = capsys.readouterr()
    assert err == "" and out.splitlines()[0] == f"stage dev: tables ready; CONFIGURATION_STREAM_ARN = {arn}"


def test_create_tables_keeps_its_positional_signature_for_the_local_stack(dynamodb: Any) -> None:
    # local/stack.py, tests/conftest.py and bench/ call it with names only
    arn = create_tables(dynamodb, CONFIGURATION, "Audit")
    assert arn == dynamodb.describe_table(TableName=CONFIGURATION)["Table"]["LatestStreamArn"]
    assert create_tables(dynamodb, CONFIGURATION, "Audit", None) == arn  # and again: idempotent


@pytest.mark.parametrize(
    ("stage", "removed", "message"),
    [
        ("dev", "AUDIT_TABLE_NAME", "AUDIT_TABLE_NAME is not set"),
        ("prod", "stages.dev", "has no stage 'prod', nor 'dev' to start it from"),
    ],
)
def test_a_stage_that_names_no_tables_is_one_line_not_a_traceback(
    dynamodb: Any, project: Path, capsys: pytest.CaptureFixture[str], stage: str, removed: str, message: str
) -> None:
    path = project / ".chalice" / "config.json"
    config = json.loads(path.read_text())
    if removed == "stages.dev":
        del config["stages"]["dev"]
    else:
        del config["stages"]["dev"]["environment_variables"][removed]
    path.write_text(json.dumps(config))
    status = main(["--stage", stage, "--project", str(project)])
    out, err = capsys.readouterr()
    assert (status, out) == (1, "") and err.count("\n") == 1 and message in err
    assert dynamodb.list_tables()["TableNames"] == []


# -- several audited tables ------------------------------------------------------------------

FLAGS, TENANTS = "FeatureFlags", "Tenants"
SEVERAL = f"{CONFIGURATION}=Audit,{FLAGS}={FLAGS}Audit,{TENANTS}={TENANTS}Audit"


def audit_tables(project: Path, audited: str) -> None:
    """The project's dev stage audits the tables of ``audited`` (AUDITED_TABLES)."""
    path = project / ".chalice" / "config.json"
    config = json.loads(path.read_text())
    config["stages"]["dev"]["environment_variables"]["AUDITED_TABLES"] = audited
    path.write_text(json.dumps(config, indent=2) + "\n")


def stage_variables(project: Path) -> dict[str, str]:
    variables: dict[str, str] = json.loads((project / ".chalice" / "config.json").read_text())["stages"]["dev"][
        "environment_variables"
    ]
    return variables


def test_every_audited_table_gets_its_trail_protected_and_written_by_its_own_function_only(
    dynamodb: Any, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a pk/sk table and a numeric-key table a platform team already has, holding settings
    existing_table(dynamodb, PK_SK, "NEW_AND_OLD_IMAGES", FLAGS)
    existing_table(dynamodb, [("Id", "N", "HASH")], "NEW_AND_OLD_IMAGES", TENANTS)
    dynamodb.put_item(TableName=FLAGS, Item={"pk": {"S": "tenant-1"}, "sk": {"S": "dark-mode"}})
    audit_tables(project, SEVERAL)
    # WHEN the stage is provisioned (twice: it is idempotent)
    assert provision(project) == 0
    capsys.readouterr()
    assert provision(project) == 0
    # THEN the seed's tables and every trail exist, and nobody's configuration table was made
    assert sorted(dynamodb.list_tables()["TableNames"]) == sorted(
        ["Audit", "AuditActors", CONFIGURATION, FLAGS, f"{FLAGS}Audit", TENANTS, f"{TENANTS}Audit"]
    )
    # AND the stage records every stream, in AUDITED_TABLES order, the first also as before
    arns = [dynamodb.describe_table(TableName=t)["Table"]["LatestStreamArn"] for t in (CONFIGURATION, FLAGS, TENANTS)]
    variables = stage_variables(project)
    assert variables["CONFIGURATION_STREAM_ARN"] == arns[0]
    assert variables["AUDITED_STREAM_ARNS"] == ",".join(arns)
    out, err = capsys.readouterr()
    assert err == "" and out.splitlines() == [
        f"stage dev: tables ready; CONFIGURATION_STREAM_ARN = {arns[0]}",
        f"stage dev: AUDITED_STREAM_ARNS = {','.join(arns)}",
        "now: chalice deploy --stage dev",
    ]
    # AND every trail is protected, and append-only: written by the role of the function auditing its table alone
    writers = {"Audit": "audit_producer", f"{FLAGS}Audit": f"audit_producer-{FLAGS}",
               f"{TENANTS}Audit": f"audit_producer-{TENANTS}"}  # fmt: skip
    for trail, function in writers.items():
        described = dynamodb.describe_table(TableName=trail)["Table"]
        assert described["DeletionProtectionEnabled"] is True
        backups = dynamodb.describe_continuous_backups(TableName=trail)["ContinuousBackupsDescription"]
        assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
        changes, writes = json.loads(dynamodb.get_resource_policy(ResourceArn=described["TableArn"])["Policy"])[
            "Statement"
        ]
        assert (changes["Effect"], changes["Principal"], changes["Resource"]) == ("Deny", "*", described["TableArn"])
        assert writes["Condition"]["ArnNotEquals"]["aws:PrincipalArn"] == (
            f"arn:aws:iam::123456789012:role/config-audit-dev-{function}"
        )
    # AND each function has its own policy file, named in the stage's config
    stage = json.loads((project / ".chalice" / "config.json").read_text())["stages"]["dev"]
    for function in [*writers.values(), "api_handler", "actor_recorder"]:
        assert stage["lambda_functions"][function]["iam_policy_file"] == f"policy-dev-{function}.json"
        assert (project / ".chalice" / f"policy-dev-{function}.json").exists()
    # AND the other teams' tables are left as they were: their settings kept, their protection their call
    assert dynamodb.get_item(TableName=FLAGS, Key={"pk": {"S": "tenant-1"}, "sk": {"S": "dark-mode"}})["Item"]
    assert not dynamodb.describe_table(TableName=FLAGS)["Table"].get("DeletionProtectionEnabled")


def test_a_missing_audited_table_is_refused_not_created(
    dynamodb: Any, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a stage naming a table nobody has made
    existing_table(dynamodb, PK_SK, "NEW_AND_OLD_IMAGES", FLAGS)
    audit_tables(project, SEVERAL)
    config_before = (project / ".chalice" / "config.json").read_text()
    # WHEN it is provisioned, THEN one line names the table and the fix, and nothing is created or written
    assert provision(project, "--enable-stream") == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err == (
        f"stage 'dev' not provisioned: table '{TENANTS}' cannot be audited: it does not exist, and provisioning "
        "creates no table but the first of AUDITED_TABLES: create it with a NEW_AND_OLD_IMAGES stream, or take it "
        "out of AUDITED_TABLES\n"
    )
    assert dynamodb.list_tables()["TableNames"] == [FLAGS]
    assert (project / ".chalice" / "config.json").read_text() == config_before
    # AND where several are missing, the one line names them all
    dynamodb.delete_table(TableName=FLAGS)
    assert provision(project) == 1
    assert capsys.readouterr().err.startswith(
        f"stage 'dev' not provisioned: tables '{FLAGS}', '{TENANTS}' cannot be audited: they do not exist, and "
    )


def test_one_table_refused_leaves_every_table_as_it_was(
    dynamodb: Any, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a seed table without a stream, and a second whose stream carries keys only
    existing_table(dynamodb, KEY, None)
    existing_table(dynamodb, PK_SK, "KEYS_ONLY", FLAGS)
    audit_tables(project, f"{CONFIGURATION}=Audit,{FLAGS}={FLAGS}Audit")
    # WHEN provisioned with --enable-stream, THEN the second is refused by name
    assert provision(project, "--enable-stream") == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert f"table '{FLAGS}' cannot be audited: its stream carries KEYS_ONLY" in err
    # AND the first got no stream either: nothing is changed before every table is known to be fit
    assert stream_view(dynamodb) is None
    assert sorted(dynamodb.list_tables()["TableNames"]) == [CONFIGURATION, FLAGS]


def test_enable_stream_turns_on_every_audited_table_that_has_none(
    dynamodb: Any, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing_table(dynamodb, PK_SK, None, FLAGS)
    audit_tables(project, f"{CONFIGURATION}=Audit,{FLAGS}={FLAGS}Audit")
    assert provision(project) == 1
    assert f"table '{FLAGS}' cannot be audited: it has no stream: run provisioning again with --enable-stream" in (
        capsys.readouterr().err
    )
    assert provision(project, "--enable-stream") == 0
    assert stream_view(dynamodb, FLAGS) == "NEW_AND_OLD_IMAGES"
    assert (
        stage_variables(project)["AUDITED_STREAM_ARNS"].split(",")[1]
        == (dynamodb.describe_table(TableName=FLAGS)["Table"]["LatestStreamArn"])
    )


def test_a_table_taken_out_of_audited_tables_takes_its_functions_policy_with_it(dynamodb: Any, project: Path) -> None:
    existing_table(dynamodb, PK_SK, "NEW_AND_OLD_IMAGES", FLAGS)
    audit_tables(project, f"{CONFIGURATION}=Audit,{FLAGS}={FLAGS}Audit")
    assert provision(project) == 0
    assert (project / ".chalice" / f"policy-dev-audit_producer-{FLAGS}.json").exists()
    # WHEN the stage audits its first table alone again
    config = json.loads((project / ".chalice" / "config.json").read_text())
    del config["stages"]["dev"]["environment_variables"]["AUDITED_TABLES"]
    (project / ".chalice" / "config.json").write_text(json.dumps(config))
    assert provision(project) == 0
    # THEN no file, no config entry and no recorded stream is left of the second
    assert not (project / ".chalice" / f"policy-dev-audit_producer-{FLAGS}.json").exists()
    stage = json.loads((project / ".chalice" / "config.json").read_text())["stages"]["dev"]
    assert sorted(stage["lambda_functions"]) == ["actor_recorder", "api_handler", "audit_producer"]
    assert "AUDITED_STREAM_ARNS" not in stage["environment_variables"]


def test_a_stage_whose_functions_names_would_be_too_long_is_one_line(
    dynamodb: Any, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing_table(dynamodb, PK_SK, "NEW_AND_OLD_IMAGES", FLAGS)
    audit_tables(project, f"{CONFIGURATION}=Audit,{FLAGS}={FLAGS}Audit")
    stage = "a-stage-name-long-enough-to-overflow"
    assert main(["--stage", stage, "--project", str(project)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    name = f"config-audit-{stage}-audit_producer-{FLAGS}"
    assert err == (
        f"stage {stage!r} not provisioned: function {name!r} would be {len(name)} characters, over Lambda's 64: "
        "choose a shorter stage name\n"
    )
    assert dynamodb.list_tables()["TableNames"] == [FLAGS]
