"""Least privilege: each function's policy is derived, committed, and fails a test if it widens."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import app
import infra.policy
from config_audit.stage import stage_environment
from infra.policy import FUNCTIONS, ROOT, main, policies_for, policy_file, queue_arn, render, unassigned_functions

LOGS = {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}
STREAM = {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"}
EXPECTED_ACTIONS = {
    "audit_producer": LOGS | STREAM | {"dynamodb:BatchWriteItem", "ssm:GetParameter"},
    "api_handler": LOGS | {"dynamodb:Query", "dynamodb:BatchGetItem"},
    "actor_recorder": LOGS | {"dynamodb:BatchWriteItem"},
}


def committed(function: str, stage: str = "dev") -> dict[str, Any]:
    policy: dict[str, Any] = json.loads((ROOT / ".chalice" / policy_file(stage, function)).read_text())
    return policy


def resources(statement: dict[str, Any]) -> list[str]:
    found = statement["Resource"]
    return found if isinstance(found, list) else [found]


def grants(policy: dict[str, Any]) -> set[tuple[str, str]]:
    """Every (action, resource) pair a policy allows."""
    return {(action, r) for s in policy["Statement"] for action in s["Action"] for r in resources(s)}


def test_every_function_of_the_app_has_a_policy_of_its_own() -> None:
    # a function added to app.py without its own policy would deploy with Chalice's fallback file
    deployed = {source.name for source in app.app.event_sources} | {f.name for f in app.app.pure_lambda_functions}
    assert deployed | ({"api_handler"} if app.app.routes else set()) == set(FUNCTIONS)
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    assert unassigned_functions("dev", config) == []
    assert "iam_policy_file" not in config["stages"]["dev"] and "iam_policy_file" not in config
    for function in FUNCTIONS:
        file = config["stages"]["dev"]["lambda_functions"][function]["iam_policy_file"]
        assert file == f"policy-dev-{function}.json"


def test_committed_policies_are_the_derived_ones() -> None:
    derived = policies_for("dev", stage_environment("dev", ROOT))
    for function in FUNCTIONS:
        assert (ROOT / ".chalice" / policy_file("dev", function)).read_text() == render(derived[function])


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_is_granted_exactly_the_actions_it_uses(function: str) -> None:
    actions = {action for s in committed(function)["Statement"] for action in s["Action"]}
    assert actions == EXPECTED_ACTIONS[function]


@pytest.mark.parametrize("function", ["api_handler", "actor_recorder"])
def test_the_history_route_and_actor_recorder_can_neither_read_the_redaction_key_nor_write_audit(
    function: str,
) -> None:
    env = stage_environment("dev", ROOT)
    audit = f"arn:aws:dynamodb:us-east-1:123456789012:table/{env['AUDIT_TABLE_NAME']}"
    granted = grants(committed(function))
    assert not any(action.startswith(("ssm:", "kms:")) for action, _ in granted)
    # the trail itself: only BatchGetItem of the entries a window names (GET /changes); no write
    assert {action for action, resource in granted if resource == audit} <= {"dynamodb:BatchGetItem"}
    # even where the stage decrypts the key with its own KMS key, only the producer may
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    widened = policies_for("dev", {**env, "REDACTION_KMS_KEY_ARN": key})[function]
    assert not any(action.startswith(("ssm:", "kms:")) for action, _ in grants(widened))


def test_only_the_producer_writes_audit_and_only_the_recorder_writes_actors() -> None:
    env = stage_environment("dev", ROOT)
    table = "arn:aws:dynamodb:us-east-1:123456789012:table/"
    writers = {
        function: {r for a, r in grants(committed(function)) if a == "dynamodb:BatchWriteItem"}
        for function in FUNCTIONS
    }
    assert writers == {
        "audit_producer": {table + env["AUDIT_TABLE_NAME"]},
        "api_handler": set(),
        "actor_recorder": {table + env["ACTORS_TABLE_NAME"]},
    }


def test_no_statement_is_wider_than_its_resource() -> None:
    env = stage_environment("dev", ROOT)
    for function in FUNCTIONS:
        for statement in committed(function)["Statement"]:
            if statement["Sid"] == "WriteOwnLogs":
                continue  # below
            for resource in resources(statement):
                assert "*" not in resource
            resource = statement["Resource"]
            if statement["Sid"] == "ReadConfigurationStream":
                assert resource == env["CONFIGURATION_STREAM_ARN"]
            if statement["Sid"] == "WriteAuditEntries":
                assert resource.endswith(f":table/{env['AUDIT_TABLE_NAME']}")
            if statement["Sid"] == "ReadAuditHistory":  # the history index, and the time index of /changes
                trail = f":table/{env['AUDIT_TABLE_NAME']}"
                assert [r[r.index(":table/") :] for r in resource] == [
                    f"{trail}/index/itemKey-modificationTime-index",
                    f"{trail}/index/timeShard-timeOrder-index",
                ]
            if statement["Sid"] == "ReadAuditEntries":  # the entries a time window names, in the trail only
                assert resource.endswith(f":table/{env['AUDIT_TABLE_NAME']}")
            if statement["Sid"] == "ReadRedactionKey":
                assert resource.endswith(f":parameter/{env['REDACTION_KEY_PARAMETER'].lstrip('/')}")


@pytest.mark.parametrize(
    ("function", "name"),
    [("audit_producer", "config-audit-dev-audit_producer"), ("api_handler", "config-audit-dev"),
     ("actor_recorder", "config-audit-dev-actor_recorder")],
)  # fmt: skip
def test_each_function_writes_only_its_own_log_group(function: str, name: str) -> None:
    # the names `chalice deploy` gives the functions; a prefix would also open dev2's and the others' logs
    [logs] = [s for s in committed(function)["Statement"] if s["Sid"] == "WriteOwnLogs"]
    group = f"arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/{name}"
    assert resources(logs) == [group, f"{group}:*"]


def test_optional_topic_and_queue_add_one_scoped_statement_each_to_the_producer_only() -> None:
    env = {
        **stage_environment("dev", ROOT),
        "CHANGE_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:config-changes",
        "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/config-audit-dlq",
    }
    policies = policies_for("dev", env)
    extra = {s["Sid"]: s for s in policies["audit_producer"]["Statement"]}
    assert extra["PublishChanges"]["Resource"] == env["CHANGE_TOPIC_ARN"]
    assert extra["SendPoisonRecords"]["Resource"] == "arn:aws:sqs:us-east-1:123456789012:config-audit-dlq"
    for function in ("api_handler", "actor_recorder"):
        assert policies[function] == policies_for("dev", stage_environment("dev", ROOT))[function]


def test_queue_arn_from_url() -> None:
    assert queue_arn("http://sqs.eu-west-1.localhost:5000/000000000000/q") == "arn:aws:sqs:eu-west-1:000000000000:q"


def test_policy_refuses_a_stream_arn_that_is_not_one() -> None:
    with pytest.raises(ValueError, match="CONFIGURATION_STREAM_ARN is not a DynamoDB stream ARN"):
        policies_for(
            "dev",
            {
                "CONFIGURATION_STREAM_ARN": "nope",
                "CONFIGURATION_TABLE_NAME": "Configuration",
                "AUDIT_TABLE_NAME": "Audit",
            },
        )


def test_a_customer_managed_key_is_decryptable_through_ssm_only() -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    policy = policies_for("dev", {**stage_environment("dev", ROOT), "REDACTION_KMS_KEY_ARN": key})["audit_producer"]
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert statements["DecryptRedactionKey"]["Resource"] == key
    assert statements["DecryptRedactionKey"]["Condition"] == {
        "StringEquals": {"kms:ViaService": "ssm.us-east-1.amazonaws.com"}
    }


def test_without_redaction_no_parameter_is_readable() -> None:
    env = {k: v for k, v in stage_environment("dev", ROOT).items() if k != "REDACT_ATTRIBUTES"}
    for policy in policies_for("dev", env).values():
        assert not any(s["Sid"].endswith("RedactionKey") for s in policy["Statement"])


def test_without_an_actors_table_the_recorder_may_only_write_its_logs() -> None:
    env = {k: v for k, v in stage_environment("dev", ROOT).items() if k != "ACTORS_TABLE_NAME"}
    policies = policies_for("dev", env)
    assert [s["Sid"] for s in policies["actor_recorder"]["Statement"]] == ["WriteOwnLogs"]
    assert [s["Sid"] for s in policies["api_handler"]["Statement"]] == [
        "WriteOwnLogs",
        "ReadAuditHistory",
        "ReadAuditEntries",
    ]


def test_the_check_passes_on_the_committed_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check", "--stage", "dev"]) == 0
    assert capsys.readouterr() == ("", "")


def test_the_check_names_a_function_that_shares_a_policy_file() -> None:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    config["stages"]["dev"]["lambda_functions"]["api_handler"]["iam_policy_file"] = "policy-dev-audit_producer.json"
    assert unassigned_functions("dev", config) == ["api_handler"]
    del config["stages"]["dev"]["lambda_functions"]
    config["stages"]["dev"]["iam_policy_file"] = "policy-dev.json"  # the one shared file of before
    assert unassigned_functions("dev", config) == list(FUNCTIONS)


def test_the_check_of_an_unknown_stage_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check", "--stage", "nope"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "stage 'nope' is not in" in err


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of .chalice that infra.policy reads and writes instead of the repository's."""
    shutil.copytree(ROOT / ".chalice", tmp_path / ".chalice", ignore=shutil.ignore_patterns("deploy*"))
    monkeypatch.setattr(infra.policy, "ROOT", tmp_path)
    return tmp_path / ".chalice"


def test_the_check_fails_on_a_widened_committed_file(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = project / "policy-dev-api_handler.json"
    widened = json.loads(path.read_text())
    widened["Statement"].append({"Sid": "ReadRedactionKey", "Effect": "Allow", "Action": ["ssm:GetParameter"],
                                 "Resource": "arn:aws:ssm:us-east-1:123456789012:parameter/config-audit/dev/redaction-key"})  # fmt: skip
    path.write_text(render(widened))
    assert main(["--check", "--stage", "dev"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert f"{path} is not the policy derived for api_handler of stage 'dev'" in err
    # AND writing derives it again, after which the check passes
    assert main(["--stage", "dev"]) == 0
    assert main(["--check", "--stage", "dev"]) == 0


def test_the_check_fails_where_functions_fall_back_to_one_shared_file(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = json.loads((project / "config.json").read_text())
    del config["stages"]["dev"]["lambda_functions"]
    config["stages"]["dev"]["iam_policy_file"] = "policy-dev.json"
    (project / "config.json").write_text(json.dumps(config))
    assert main(["--check", "--stage", "dev"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    for function in FUNCTIONS:
        assert f"{function} of stage 'dev' does not have iam_policy_file 'policy-dev-{function}.json'" in err


def test_a_stage_without_its_stream_gets_no_policy_but_an_error_naming_the_variable() -> None:
    env = {k: v for k, v in stage_environment("dev", ROOT).items() if k != "CONFIGURATION_STREAM_ARN"}
    with pytest.raises(ValueError, match=r"^CONFIGURATION_STREAM_ARN not set in the stage's environment_variables$"):
        policies_for("dev", env)


# -- several audited tables ------------------------------------------------------------------

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/"
THREE = {
    **{k: v for k, v in stage_environment("dev", ROOT).items() if k != "CONFIGURATION_STREAM_ARN"},
    "AUDITED_TABLES": "Configuration=Audit,FeatureFlags=FeatureFlagsAudit,Tenants=TenantsAudit",
    # in any order: each stream is found by the table its ARN names
    "AUDITED_STREAM_ARNS": f"{ARN}Tenants/stream/3,{ARN}Configuration/stream/1,{ARN}FeatureFlags/stream/2",
}
PRODUCERS = {
    "audit_producer": ("Configuration", "Audit"),
    "audit_producer-FeatureFlags": ("FeatureFlags", "FeatureFlagsAudit"),
    "audit_producer-Tenants": ("Tenants", "TenantsAudit"),
}


@pytest.mark.parametrize("tables", [2, 3])
def test_with_several_tables_each_producer_reads_its_stream_and_writes_its_trail_and_nothing_else(tables: int) -> None:
    env = {**THREE, "AUDITED_TABLES": ",".join(THREE["AUDITED_TABLES"].split(",")[:tables])}
    policies = policies_for("dev", env)
    producers = dict(list(PRODUCERS.items())[:tables])
    assert list(policies) == ["audit_producer", "api_handler", "actor_recorder", *list(producers)[1:]]
    for function, (source, trail) in producers.items():
        granted = grants(policies[function])
        stream = {r for a, r in granted if a.startswith("dynamodb:") and a in STREAM}
        written = {r for a, r in granted if a == "dynamodb:BatchWriteItem"}
        assert stream == {f"{ARN}{source}/stream/{list(PRODUCERS).index(function) + 1}"}
        assert written == {ARN + trail}
        assert {a for a, _ in granted} == EXPECTED_ACTIONS["audit_producer"]
        [logs] = [s for s in policies[function]["Statement"] if s["Sid"] == "WriteOwnLogs"]
        assert resources(logs)[0].endswith(f":log-group:/aws/lambda/config-audit-dev-{function}")
    # AND the history routes query exactly every trail's history and time indexes and AuditActors,
    # read entries from the trails only, and write nothing
    queried = {r for a, r in grants(policies["api_handler"]) if a == "dynamodb:Query"}
    indexes = ("itemKey-modificationTime-index", "timeShard-timeOrder-index")
    trails = {ARN + trail for _, trail in producers.values()}
    assert queried == {f"{trail}/index/{index}" for trail in trails for index in indexes} | {ARN + "AuditActors"}
    assert {r for a, r in grants(policies["api_handler"]) if a == "dynamodb:BatchGetItem"} == trails
    assert {a for a, _ in grants(policies["api_handler"])} == EXPECTED_ACTIONS["api_handler"]
    # AND actor_recorder is as with one table: its logs and AuditActors
    assert policies["actor_recorder"] == policies_for("dev", stage_environment("dev", ROOT))["actor_recorder"]


def test_a_table_without_a_recorded_stream_gets_no_policy_but_an_error_naming_it() -> None:
    env = {**THREE, "AUDITED_STREAM_ARNS": f"{ARN}Configuration/stream/1,{ARN}FeatureFlags/stream/2"}
    with pytest.raises(ValueError, match=r"^AUDITED_STREAM_ARNS has no stream of table 'Tenants' in the stage's"):
        policies_for("dev", env)


def test_a_function_name_lambda_would_refuse_gets_no_policy() -> None:
    assert len("config-audit-twenty-three-characters-audit_producer-FeatureFlags") == 64
    policies_for("twenty-three-characters", THREE)  # Lambda's limit, not over it
    with pytest.raises(
        ValueError, match=r"^function 'config-audit-twenty-four-characters-x-audit_producer-\w+' would be 65"
    ):
        policies_for("twenty-four-characters-x", THREE)


def test_a_stage_with_a_digest_bucket_lets_its_producers_put_objects_there_and_nowhere_else() -> None:
    env = {**stage_environment("dev", ROOT), "DIGEST_BUCKET": "config-audit-dev-digests"}
    policies = policies_for("dev", env)
    s3 = {(action, r) for action, r in grants(policies["audit_producer"]) if action.startswith("s3:")}
    assert s3 == {("s3:PutObject", "arn:aws:s3:::config-audit-dev-digests/*")}
    for function in ("api_handler", "actor_recorder"):
        assert not any(action.startswith("s3:") for action, _ in grants(policies[function]))
    unset = policies_for("dev", stage_environment("dev", ROOT))["audit_producer"]
    assert not any(action.startswith("s3:") for action, _ in grants(unset))
