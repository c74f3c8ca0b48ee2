"""Deploying for real: provisioning, the one-stack CloudFormation package, Terraform, least
privilege, the CI workflows, and a `chalice deploy` / `chalice delete` rehearsal against moto."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from chalicelib.audit.repository import HISTORY_INDEX, TIME_INDEX
from infra.policy import FUNCTIONS
from infra.tables import audit_table, configuration_table
from local.moto_process import moto_server
from tests.conftest import ROOT

pytestmark = pytest.mark.slow
CHALICE = str(Path(sys.executable).with_name("chalice"))
REHEARSAL = "rehearsal"


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with moto_server() as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        yield url


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the Chalice project, so provisioning and deploying leave the repository alone."""
    target = tmp_path / "project"
    target.mkdir()
    for name in ("app.py", "chalicelib", "requirements.txt"):
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, target / name)
    (target / ".chalice").mkdir()
    for path in [ROOT / ".chalice" / "config.json", *(ROOT / ".chalice").glob("policy-*.json")]:
        shutil.copy(path, target / ".chalice" / path.name)
    if (ROOT / ".chalice" / "deployments").exists():  # reuse the dependency build if there is one
        shutil.copytree(ROOT / ".chalice" / "deployments", target / ".chalice" / "deployments")
    return target


def run(*command: str, cwd: Path = ROOT, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, cwd=cwd, env=dict(os.environ), capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}{done.stderr[-3000:]}"
    return done


def provision_output(project: Path, stage: str = REHEARSAL) -> str:
    return run(sys.executable, "-m", "infra.provision", "--stage", stage, "--project", str(project)).stdout


def provision(project: Path, stage: str = REHEARSAL) -> dict[str, Any]:
    run(sys.executable, "-m", "infra.provision", "--stage", stage, "--project", str(project))
    config = json.loads((project / ".chalice" / "config.json").read_text())
    return dict(config["stages"][stage])


def test_provision_creates_the_tables_once_and_records_the_stream(endpoint: str, project: Path) -> None:
    first = provision(project)
    second = provision(project)  # idempotent: nothing is created twice, the ARN stays
    dynamodb = boto3.client("dynamodb")
    assert sorted(dynamodb.list_tables()["TableNames"]) == ["Audit", "AuditActors", "Configuration"]
    described = dynamodb.describe_table(TableName="Configuration")["Table"]
    arn = second["environment_variables"]["CONFIGURATION_STREAM_ARN"]
    assert arn == first["environment_variables"]["CONFIGURATION_STREAM_ARN"] == described["LatestStreamArn"]
    assert described["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    audit = dynamodb.describe_table(TableName="Audit")["Table"]
    assert [i["IndexName"] for i in audit["GlobalSecondaryIndexes"]] == [HISTORY_INDEX, TIME_INDEX]
    # AND each function has its own policy file, named in the stage's config; only the producer's reads the stream
    for function in FUNCTIONS:
        assert second["lambda_functions"][function]["iam_policy_file"] == f"policy-{REHEARSAL}-{function}.json"
    assert "iam_policy_file" not in second  # no stage-wide file for a function to fall back to
    policy = json.loads((project / ".chalice" / f"policy-{REHEARSAL}-audit_producer.json").read_text())
    stream_statement = next(s for s in policy["Statement"] if s["Sid"] == "ReadConfigurationStream")
    assert stream_statement["Resource"] == arn
    # AND every table is protected from deletion and recoverable to any point in time
    for name in ("Configuration", "Audit", "AuditActors"):
        assert dynamodb.describe_table(TableName=name)["Table"]["DeletionProtectionEnabled"] is True
        backups = dynamodb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
        assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    # AND the Audit table denies changing entries to everyone, and writing them to all but one role
    table_policy = json.loads(dynamodb.get_resource_policy(ResourceArn=audit["TableArn"])["Policy"])
    changes, writes = table_policy["Statement"]
    assert changes["Effect"] == writes["Effect"] == "Deny" and changes["Principal"] == writes["Principal"] == "*"
    assert set(changes["Action"]) >= {"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:PartiQLUpdate",
                                      "dynamodb:PartiQLDelete"} and "Condition" not in changes  # fmt: skip
    assert set(writes["Action"]) >= {"dynamodb:PutItem", "dynamodb:BatchWriteItem", "dynamodb:PartiQLInsert"}
    writer = writes["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    assert writer.endswith(f":role/config-audit-{REHEARSAL}-audit_producer")
    # AND the stage's redaction key exists in SSM
    ssm = boto3.client("ssm")
    ssm.get_parameter(Name=second["environment_variables"]["REDACTION_KEY_PARAMETER"], WithDecryption=True)


def test_chalice_deploy_rehearsal_creates_and_delete_removes_the_function(endpoint: str, project: Path) -> None:
    # GIVEN provisioned tables and a stage that knows its stream
    stage = provision(project)
    # WHEN the real `chalice deploy` runs against the moto server
    run(CHALICE, "--project-dir", str(project), "deploy", "--stage", REHEARSAL, timeout=900)
    lambda_ = boto3.client("lambda")
    name = f"config-audit-{REHEARSAL}-audit_producer"
    # THEN the function carries the stage's variables
    configuration = lambda_.get_function(FunctionName=name)["Configuration"]
    assert configuration["Environment"]["Variables"] == stage["environment_variables"]
    # AND its event source mapping reads the Configuration stream from TRIM_HORIZON
    mappings = lambda_.list_event_source_mappings()["EventSourceMappings"]
    [mapping] = [m for m in mappings if m["FunctionArn"] == configuration["FunctionArn"]]
    assert mapping["EventSourceArn"] == stage["environment_variables"]["CONFIGURATION_STREAM_ARN"]
    assert mapping["StartingPosition"] == "TRIM_HORIZON" and mapping["BatchSize"] == 100
    # AND provisioning run again sets it never to give up on a record the stream holds (Chalice passes neither
    # setting: AWS applies its default, -1, which moto leaves unset), and the second run finds nothing to do
    name_and_stream = f"{name} on {mapping['EventSourceArn']}"
    assert f"the mapping of {name_and_stream} now never gives up" in provision_output(project)
    [mapping] = [m for m in lambda_.list_event_source_mappings()["EventSourceMappings"] if m["UUID"] == mapping["UUID"]]
    assert (mapping["MaximumRetryAttempts"], mapping["MaximumRecordAgeInSeconds"]) == (-1, -1)
    assert "never gives up" not in provision_output(project)
    # AND its role is the one role the Audit table lets write entries
    audit_arn = boto3.client("dynamodb").describe_table(TableName="Audit")["Table"]["TableArn"]
    table_policy = json.loads(boto3.client("dynamodb").get_resource_policy(ResourceArn=audit_arn)["Policy"])
    assert table_policy["Statement"][1]["Condition"]["ArnNotEquals"]["aws:PrincipalArn"] == configuration["Role"]
    # AND actor_recorder is deployed with the stage's variables, and is the one writer of AuditActors
    recorder = lambda_.get_function(FunctionName=f"config-audit-{REHEARSAL}-actor_recorder")["Configuration"]
    assert recorder["Environment"]["Variables"]["ACTORS_TABLE_NAME"] == "AuditActors"
    actors_arn = boto3.client("dynamodb").describe_table(TableName="AuditActors")["Table"]["TableArn"]
    actors_policy = json.loads(boto3.client("dynamodb").get_resource_policy(ResourceArn=actors_arn)["Policy"])
    assert actors_policy["Statement"][1]["Condition"]["ArnNotEquals"]["aws:PrincipalArn"] == recorder["Role"]
    # AND each of the three functions runs under a role of its own, holding exactly its own policy file
    iam = boto3.client("iam")
    functions = {
        "audit_producer": configuration,
        "api_handler": lambda_.get_function(FunctionName=f"config-audit-{REHEARSAL}")["Configuration"],
        "actor_recorder": recorder,
    }
    roles = {}
    for function, deployed in functions.items():
        role = deployed["Role"].rsplit("/", 1)[-1]
        assert role == f"config-audit-{REHEARSAL}-{function}"
        [policy_name] = iam.list_role_policies(RoleName=role)["PolicyNames"]
        granted = iam.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"]
        if isinstance(granted, str):
            granted = json.loads(granted)
        assert granted == json.loads((project / ".chalice" / f"policy-{REHEARSAL}-{function}.json").read_text())
        roles[function] = {action for s in granted["Statement"] for action in s["Action"]}
    assert len({deployed["Role"] for deployed in functions.values()}) == 3
    # AND neither the history route nor actor_recorder may read the redaction key or write Audit
    assert "ssm:GetParameter" in roles["audit_producer"]
    for function in ("api_handler", "actor_recorder"):
        assert not any(action.startswith(("ssm:", "kms:")) for action in roles[function])
    assert roles["api_handler"] == {
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "dynamodb:BatchGetItem",
        "logs:PutLogEvents",
        "dynamodb:Query",
    }
    assert "dynamodb:BatchWriteItem" not in roles["api_handler"]
    # WHEN `chalice delete` runs, THEN the functions, the mapping and the three roles are gone
    run(CHALICE, "--project-dir", str(project), "delete", "--stage", REHEARSAL)
    remaining = [f["FunctionName"] for f in lambda_.list_functions()["Functions"]]
    assert not any(deployed["FunctionName"] in remaining for deployed in functions.values())
    assert lambda_.list_event_source_mappings()["EventSourceMappings"] == []
    left = [r["RoleName"] for r in iam.list_roles()["Roles"]]
    assert not any(f"config-audit-{REHEARSAL}-{function}" in left for function in FUNCTIONS)


def test_chalice_deploy_subscribes_every_audited_stream_and_delete_removes_every_subscription(
    endpoint: str, project: Path
) -> None:
    # GIVEN a pk/sk table and a numeric-key table a platform team already has, audited beside the seed's
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(
        TableName="FeatureFlags",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "N"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )  # fmt: skip
    dynamodb.create_table(
        TableName="Tenants", AttributeDefinitions=[{"AttributeName": "Id", "AttributeType": "N"}],
        KeySchema=[{"AttributeName": "Id", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )  # fmt: skip
    path = project / ".chalice" / "config.json"
    config = json.loads(path.read_text())
    config["stages"][REHEARSAL] = json.loads(json.dumps(config["stages"]["dev"]))
    config["stages"][REHEARSAL]["environment_variables"]["AUDITED_TABLES"] = (
        "Configuration=Audit,FeatureFlags=FeatureFlagsAudit,Tenants=TenantsAudit"
    )
    path.write_text(json.dumps(config, indent=2))
    stage = provision(project)
    streams = {table: dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
               for table in ("Configuration", "FeatureFlags", "Tenants")}  # fmt: skip
    # WHEN the real `chalice deploy` runs
    run(CHALICE, "--project-dir", str(project), "deploy", "--stage", REHEARSAL, timeout=900)
    # THEN each audited stream is subscribed, from TRIM_HORIZON, by a function running the audit_producer handler
    lambda_ = boto3.client("lambda")
    producers = {"Configuration": ("audit_producer", "Audit"),
                 "FeatureFlags": ("audit_producer-FeatureFlags", "FeatureFlagsAudit"),
                 "Tenants": ("audit_producer-Tenants", "TenantsAudit")}  # fmt: skip
    functions = {table: f"config-audit-{REHEARSAL}-{function}" for table, (function, _) in producers.items()}
    deployed = {table: lambda_.get_function(FunctionName=name)["Configuration"] for table, name in functions.items()}
    mappings = lambda_.list_event_source_mappings()["EventSourceMappings"]
    assert sorted((m["EventSourceArn"], m["FunctionArn"]) for m in mappings) == sorted(
        (streams[table], deployed[table]["FunctionArn"]) for table in functions
    )
    assert all(m["StartingPosition"] == "TRIM_HORIZON" and m["BatchSize"] == 100 for m in mappings)
    for function in deployed.values():
        assert function["Handler"] == "app.audit_producer"
        assert function["Environment"]["Variables"] == stage["environment_variables"]
    # AND each runs under a role of its own, holding its own policy file: its stream, its trail
    iam = boto3.client("iam")
    for table, (function, trail) in producers.items():
        role = deployed[table]["Role"]
        assert role.endswith(f":role/{functions[table]}")
        [policy_name] = iam.list_role_policies(RoleName=functions[table])["PolicyNames"]
        granted = iam.get_role_policy(RoleName=functions[table], PolicyName=policy_name)["PolicyDocument"]
        granted = json.loads(granted) if isinstance(granted, str) else granted
        assert granted == json.loads((project / ".chalice" / f"policy-{REHEARSAL}-{function}.json").read_text())
        statements = {s["Sid"]: s["Resource"] for s in granted["Statement"]}
        assert statements["ReadConfigurationStream"] == streams[table]
        trail_arn = dynamodb.describe_table(TableName=trail)["Table"]["TableArn"]
        assert statements["WriteAuditEntries"] == trail_arn
        # AND that role is the one role the trail lets write entries
        table_policy = json.loads(dynamodb.get_resource_policy(ResourceArn=trail_arn)["Policy"])
        assert table_policy["Statement"][1]["Condition"]["ArnNotEquals"]["aws:PrincipalArn"] == role
    # WHEN `chalice delete` runs, THEN no subscription, no producer and no producer role is left
    run(CHALICE, "--project-dir", str(project), "delete", "--stage", REHEARSAL)
    assert lambda_.list_event_source_mappings()["EventSourceMappings"] == []
    remaining = [f["FunctionName"] for f in lambda_.list_functions()["Functions"]]
    assert not any(name in remaining for name in functions.values())
    assert not any(r["RoleName"] in functions.values() for r in iam.list_roles()["Roles"])


@pytest.fixture(scope="module")
def stack_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`make package`'s output: Chalice's SAM template merged with infra/cloudformation/merge.json."""
    out = tmp_path_factory.mktemp("cloudformation")
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    merge = ROOT / "infra" / "cloudformation" / "merge.json"
    command = [CHALICE, "package", "--stage", "dev", "--merge-template", str(merge), str(out)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    lint = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), str(out / "sam.json")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    return dict(json.loads((out / "sam.json").read_text()))


def test_one_stack_holds_both_tables_as_infra_defines_them(stack_template: dict[str, Any]) -> None:
    resources = stack_template["Resources"]
    for logical, definition in (("ConfigurationTable", configuration_table("x")), ("AuditTable", audit_table("x"))):
        properties = resources[logical]["Properties"]
        assert properties["DeletionProtectionEnabled"] is True
        assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert properties["KeySchema"] == definition["KeySchema"]
        assert properties["AttributeDefinitions"] == definition["AttributeDefinitions"]
        assert properties.get("GlobalSecondaryIndexes") == definition.get("GlobalSecondaryIndexes")
        assert resources[logical]["DeletionPolicy"] == "Retain"
    assert resources["ConfigurationTable"]["Properties"]["StreamSpecification"] == {
        "StreamViewType": "NEW_AND_OLD_IMAGES"
    }


def test_the_mapping_reads_the_stream_by_reference_with_the_settings_chalice_cannot_express(
    stack_template: dict[str, Any],
) -> None:
    function = stack_template["Resources"]["AuditProducer"]["Properties"]
    [source] = function["Events"].values()
    settings = source["Properties"]
    assert settings["Stream"] == {"Fn::GetAtt": ["ConfigurationTable", "StreamArn"]}
    assert settings["StartingPosition"] == "TRIM_HORIZON"
    assert settings["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert settings["BisectBatchOnFunctionError"] is True
    # never give up on a record the stream holds; a batch discarded all the same goes, whole, to the bucket
    assert settings["MaximumRetryAttempts"] == -1 and settings["MaximumRecordAgeInSeconds"] == -1
    assert settings["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": ["FailureBucket", "Arn"]}}}
    variables = function["Environment"]["Variables"]
    # partial-failure reporting is on in the function exactly where the mapping reports it
    assert variables["REPORT_BATCH_ITEM_FAILURES"] == "true"
    assert variables["CONFIGURATION_STREAM_ARN"] == settings["Stream"]
    assert variables["AUDIT_TABLE_NAME"] == {"Ref": "AuditTable"}
    assert variables["DEAD_LETTER_QUEUE_URL"] == {"Ref": "DeadLetterQueue"}  # poison records, still
    assert variables["FAILURE_BUCKET"] == {"Ref": "FailureBucket"}
    assert stack_template["Outputs"]["FailureBucketName"] == {"Value": {"Ref": "FailureBucket"}}
    assert stack_template["Resources"]["ChangeTopic"]["Condition"] == "NotifyChangesOn"


NO_VALUE = {"Ref": "AWS::NoValue"}


def _holds(condition: Any, parameters: dict[str, str], template: dict[str, Any]) -> bool:
    """A condition (or a rule's assertion) of the template, given its parameters' values."""
    [(function, arguments)] = condition.items()
    if function == "Condition":
        return _holds(template["Conditions"][arguments], parameters, template)
    if function == "Fn::Equals":
        left, right = (parameters.get(a["Ref"], template["Parameters"][a["Ref"]].get("Default")) if isinstance(a, dict)
                       else a for a in arguments)  # fmt: skip
        return bool(left == right)
    if function == "Fn::Not":
        return not _holds(arguments[0], parameters, template)
    checks = [_holds(a, parameters, template) for a in arguments]
    return all(checks) if function == "Fn::And" else any(checks)


def resolved(template: dict[str, Any], **parameters: str) -> dict[str, Any]:
    """The template as CloudFormation would create it with these parameters: conditions decided, Fn::If taken,
    AWS::NoValue dropped, resources and outputs whose condition fails left out; AssertionError if a rule fails."""
    for name, rule in template.get("Rules", {}).items():
        if "RuleCondition" not in rule or _holds(rule["RuleCondition"], parameters, template):
            assert all(_holds(a["Assert"], parameters, template) for a in rule["Assertions"]), name

    def walk(value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in (walk(item) for item in value) if v != NO_VALUE]
        if isinstance(value, dict):
            if "Fn::If" in value:
                name, when_true, when_false = value["Fn::If"]
                return walk(when_true if _holds({"Condition": name}, parameters, template) else when_false)
            return {k: v for k, v in ((k, walk(item)) for k, item in value.items()) if v != NO_VALUE}
        return value

    kept = {
        section: {name: walk(body) for name, body in template.get(section, {}).items()
                  if "Condition" not in body or _holds({"Condition": body["Condition"]}, parameters, template)}
        for section in ("Resources", "Outputs")
    }  # fmt: skip
    return {**template, **kept}


def _statements(document: Any) -> list[dict[str, Any]]:
    found = []
    for statement in document["Statement"]:
        if "Fn::If" in statement:
            statement = statement["Fn::If"][1]
        found.append(statement)
    return found


def test_the_audit_table_is_append_only_and_only_the_producer_role_writes_it(stack_template: dict[str, Any]) -> None:
    resources = stack_template["Resources"]
    audit = resources["AuditTable"]["Properties"]
    table_arn = audit["ResourcePolicy"]["PolicyDocument"]["Statement"][0]["Resource"]
    changes, writes = audit["ResourcePolicy"]["PolicyDocument"]["Statement"]
    # no principal may change or delete an entry, by the API or by PartiQL
    assert (changes["Effect"], changes["Principal"]) == ("Deny", "*") and "Condition" not in changes
    assert set(changes["Action"]) == {"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:PartiQLUpdate",
                                      "dynamodb:PartiQLDelete"}  # fmt: skip
    # no principal but the producer's role may write one
    assert (writes["Effect"], writes["Principal"]) == ("Deny", "*")
    assert set(writes["Action"]) == {"dynamodb:PutItem", "dynamodb:BatchWriteItem", "dynamodb:PartiQLInsert"}
    writer = writes["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]["Fn::Sub"]
    role_name = resources["AuditProducerRole"]["Properties"]["RoleName"]["Fn::Sub"]
    assert writer.endswith(f":role/{role_name}")
    assert table_arn["Fn::Sub"].endswith(":table/" + audit["TableName"]["Fn::Sub"])
    # and the policy names the table and the role by name, so neither waits on the other: no cycle
    assert "Fn::GetAtt" not in json.dumps(audit["ResourcePolicy"])
    assert resources["AuditProducer"]["Properties"]["Role"] == {"Fn::GetAtt": ["AuditProducerRole", "Arn"]}


def test_a_trail_of_the_configuration_tables_writes_feeds_actor_recorder(stack_template: dict[str, Any]) -> None:
    assert "ConfigurationWritesTrail" not in resolved(stack_template)["Resources"]
    resources = resolved(stack_template, RecordActors="true")["Resources"]
    # the trail exists only where RecordActors=true, and logs successful-or-not writes on one table only
    trail = resources["ConfigurationWritesTrail"]
    assert trail["Condition"] == resources["TrailBucket"]["Condition"] == "RecordActorsOn"
    [selector] = trail["Properties"]["AdvancedEventSelectors"]
    fields = {f["Field"]: f["Equals"] for f in selector["FieldSelectors"]}
    assert fields["eventCategory"] == ["Data"] and fields["readOnly"] == ["false"]
    assert fields["resources.type"] == ["AWS::DynamoDB::Table"]
    assert fields["resources.ARN"] == [{"Fn::GetAtt": ["ConfigurationTable", "Arn"]}]
    # its bucket is encrypted, private, and written by CloudTrail alone, over TLS only
    bucket = resources["TrailBucket"]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert all(bucket["PublicAccessBlockConfiguration"].values()) and len(bucket["PublicAccessBlockConfiguration"]) == 4
    statements = resources["TrailBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert allows and all(s["Principal"] == {"Service": "cloudtrail.amazonaws.com"} and "aws:SourceArn" in
                          json.dumps(s["Condition"]) for s in allows)  # fmt: skip
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )
    # the rule Chalice makes for actor_recorder takes DynamoDB write calls only
    [event] = resources["ActorRecorder"]["Properties"]["Events"].values()
    pattern = event["Properties"]["Pattern"]
    assert pattern["source"] == ["aws.dynamodb"] and "PutItem" in pattern["detail"]["eventName"]
    assert "GetItem" not in pattern["detail"]["eventName"]
    # AuditActors is protected like Audit: append-only, and written by the recorder's role alone
    actors = resources["AuditActorsTable"]["Properties"]
    assert actors["DeletionProtectionEnabled"] is True
    assert actors["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    _changes, writes = actors["ResourcePolicy"]["PolicyDocument"]["Statement"]
    role_name = resources["ActorRecorderRole"]["Properties"]["RoleName"]["Fn::Sub"]
    assert writes["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]["Fn::Sub"].endswith(f":role/{role_name}")
    variables = resources["ActorRecorder"]["Properties"]["Environment"]["Variables"]
    assert variables["ACTORS_TABLE_NAME"] == {"Ref": "AuditActorsTable"}
    assert resources["APIHandler"]["Properties"]["Environment"]["Variables"]["ACTORS_TABLE_NAME"] == {
        "Ref": "AuditActorsTable"
    }


KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
EVERY_OPTION = {"NotifyChanges": "true", "RedactAttributes": "*secret*", "RedactionKeyParameter": "/config-audit/key",
                "RedactionKmsKeyArn": KMS_KEY}  # fmt: skip


def test_each_function_role_grants_exactly_what_it_calls(stack_template: dict[str, Any]) -> None:
    resources = resolved(stack_template, **EVERY_OPTION)["Resources"]
    producer = _statements(resources["AuditProducerRole"]["Properties"]["Policies"][0]["PolicyDocument"])
    history = _statements(resources["ApiHandlerRole"]["Properties"]["Policies"][0]["PolicyDocument"])
    actions = {s["Sid"]: set(s["Action"]) for s in producer}
    assert actions == {
        "WriteOwnLogs": {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"},
        "ReadConfigurationStream": {
            "dynamodb:DescribeStream",
            "dynamodb:GetRecords",
            "dynamodb:GetShardIterator",
            "dynamodb:ListStreams",
        },
        "WriteAuditEntries": {"dynamodb:BatchWriteItem"},
        "SendPoisonRecords": {"sqs:SendMessage"},
        "WriteFailureRecords": {"s3:PutObject"},  # Lambda writes a discarded batch on the function's behalf
        "ListFailureRecords": {"s3:ListBucket"},
        "PublishChanges": {"sns:Publish"},
        "ReadRedactionKey": {"ssm:GetParameter"},
        "DecryptRedactionKey": {"kms:Decrypt"},
        "WriteDigests": {"s3:PutObject"},
    }
    assert {s["Sid"]: set(s["Action"]) for s in history} == {
        "WriteOwnLogs": {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"},
        "ReadAuditHistory": {"dynamodb:Query"},
        "ReadAuditEntries": {"dynamodb:BatchGetItem"},
        "ReadActors": {"dynamodb:Query"},
    }
    recorder = _statements(resources["ActorRecorderRole"]["Properties"]["Policies"][0]["PolicyDocument"])
    assert {s["Sid"]: set(s["Action"]) for s in recorder} == {
        "WriteOwnLogs": {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"},
        "WriteActors": {"dynamodb:BatchWriteItem"},  # AuditActors, and nothing else
    }
    assert next(s for s in recorder if s["Sid"] == "WriteActors")["Resource"] == {
        "Fn::GetAtt": ["AuditActorsTable", "Arn"]
    }
    producer += recorder
    for statement in producer + history:
        resource = statement["Resource"]
        # one resource, or (reading the history) the two indexes of the one trail
        assert resource != "*" and (not isinstance(resource, list) or statement["Sid"] == "ReadAuditHistory")
        if statement["Sid"] == "WriteOwnLogs":
            assert "${AWS::StackName}-*" in resource["Fn::Sub"]
        elif statement["Sid"] == "WriteDigests":  # the digest bucket's objects, and no other bucket's
            assert resource == {"Fn::Sub": "${DigestBucket.Arn}/*"}
        elif statement["Sid"] == "WriteFailureRecords":  # the objects of the one bucket
            assert resource == {"Fn::Sub": "${FailureBucket.Arn}/*"}
        else:
            assert "*" not in json.dumps(resource)


STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/{}/stream/2024-09-11T09:00:17.927"
TWO_EXISTING = {"AuditedTable1": "FeatureFlags", "AuditedTable1StreamArn": STREAM_ARN.format("FeatureFlags"),
                "AuditedTable2": "Tenants", "AuditedTable2StreamArn": STREAM_ARN.format("Tenants")}  # fmt: skip


def _granted(role: dict[str, Any], action: str) -> set[str]:
    """The resources (as JSON) a resolved role's policy grants one action on."""
    statements = role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    return {json.dumps(s["Resource"], sort_keys=True) for s in statements if action in s["Action"]}


def test_the_stack_audits_tables_that_exist_each_into_a_protected_trail_of_its_own(
    stack_template: dict[str, Any],
) -> None:
    # GIVEN the stack with two tables that exist already, by name and stream ARN
    template = resolved(stack_template, **TWO_EXISTING, RecordActors="true")
    resources = template["Resources"]
    slots = ("AuditedTable1", "AuditedTable2")
    assert sorted(name for name in resources if name.startswith("AuditedTable")) == sorted(
        f"{slot}{kind}" for slot in slots for kind in ("Trail", "EventSourceMapping")
    )
    audit = resources["AuditTable"]
    for slot in slots:
        # THEN each gets a trail shaped and protected as Audit: deletion protection, PITR, retained, append-only
        trail = resources[f"{slot}Trail"]
        assert trail["DeletionPolicy"] == trail["UpdateReplacePolicy"] == "Retain"
        different = {"TableName", "ResourcePolicy"}
        assert {k: v for k, v in trail["Properties"].items() if k not in different} == {
            k: v for k, v in audit["Properties"].items() if k not in different
        }
        assert trail["Properties"]["DeletionProtectionEnabled"] is True
        assert trail["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        name = trail["Properties"]["TableName"]["Fn::Sub"]
        assert name == f"${{AWS::StackName}}-${{{slot}}}-audit"
        changes, writes = trail["Properties"]["ResourcePolicy"]["PolicyDocument"]["Statement"]
        assert (changes["Effect"], changes["Principal"], "Condition" in changes) == ("Deny", "*", False)
        assert (
            changes["Resource"]["Fn::Sub"].endswith(f":table/{name}")
            and changes["Action"] == (audit["Properties"]["ResourcePolicy"]["PolicyDocument"]["Statement"][0]["Action"])
        )
        assert writes == {**audit["Properties"]["ResourcePolicy"]["PolicyDocument"]["Statement"][1],
                          "Resource": changes["Resource"]}  # fmt: skip
        # AND the producer reads its stream with the very settings of the Configuration stream's mapping
        [seed_event] = resources["AuditProducer"]["Properties"]["Events"].values()
        seed = {k: v for k, v in seed_event["Properties"].items() if k not in ("Stream", "DestinationConfig")}
        assert resources[f"{slot}EventSourceMapping"]["Properties"] == {
            "FunctionName": {"Ref": "AuditProducer"},
            "EventSourceArn": {"Ref": f"{slot}StreamArn"},
            **seed,
            "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": ["FailureBucket", "Arn"]}}},
        }
        assert seed["FunctionResponseTypes"] == ["ReportBatchItemFailures"] and seed["BisectBatchOnFunctionError"]
    # AND the producer may read exactly those streams and write exactly those trails
    producer = resources["AuditProducerRole"]
    streams = [{"Fn::GetAtt": ["ConfigurationTable", "StreamArn"]}, *({"Ref": f"{s}StreamArn"} for s in slots)]
    assert _granted(producer, "dynamodb:GetRecords") == {json.dumps(s, sort_keys=True) for s in streams}
    trails = [{"Fn::GetAtt": [name, "Arn"]} for name in ("AuditTable", *(f"{s}Trail" for s in slots))]
    assert _granted(producer, "dynamodb:BatchWriteItem") == {json.dumps(t, sort_keys=True) for t in trails}
    # AND the history routes may query exactly their history and time indexes and AuditActors, and
    # fetch entries from exactly those trails
    indexes = [
        {"Fn::Sub": f"${{{t}.Arn}}/index/{index}"}
        for t in ("AuditTable", *(f"{s}Trail" for s in slots))
        for index in (HISTORY_INDEX, TIME_INDEX)
    ]
    queried = set()
    for granted in _granted(resources["ApiHandlerRole"], "dynamodb:Query"):
        resource = json.loads(granted)
        queried |= {json.dumps(r, sort_keys=True) for r in (resource if isinstance(resource, list) else [resource])}
    assert queried == {json.dumps(r, sort_keys=True) for r in [*indexes, {"Fn::GetAtt": ["AuditActorsTable", "Arn"]}]}
    assert _granted(resources["ApiHandlerRole"], "dynamodb:BatchGetItem") == {
        json.dumps(t, sort_keys=True) for t in trails
    }
    # AND every function knows every pair, the stack's own first
    audited = {"Fn::Join": ["", [{"Fn::Sub": "${ConfigurationTable}=${AuditTable}"},
                                 {"Fn::Sub": ",${AuditedTable1}=${AuditedTable1Trail}"},
                                 {"Fn::Sub": ",${AuditedTable2}=${AuditedTable2Trail}"}, ""]]}  # fmt: skip
    for function in ("AuditProducer", "APIHandler", "ActorRecorder"):
        assert resources[function]["Properties"]["Environment"]["Variables"]["AUDITED_TABLES"] == audited
    # AND CloudTrail logs the write calls on every audited table, for actor_recorder
    [selector] = resources["ConfigurationWritesTrail"]["Properties"]["AdvancedEventSelectors"]
    arns = next(f["Equals"] for f in selector["FieldSelectors"] if f["Field"] == "resources.ARN")
    assert arns[1:] == [{"Fn::Sub": f"arn:${{AWS::Partition}}:dynamodb:${{AWS::Region}}:${{AWS::AccountId}}:table/"
                                    f"${{{slot}}}"} for slot in slots]  # fmt: skip
    assert set(template["Outputs"]) >= {"AuditedTable1TrailName", "AuditedTable2TrailName"}


def test_the_stack_without_tables_that_exist_holds_the_seeds_alone(stack_template: dict[str, Any]) -> None:
    template = resolved(stack_template)
    resources = template["Resources"]
    assert not [name for name in [*resources, *template["Outputs"]] if name.startswith("AuditedTable")]
    for function in ("AuditProducer", "APIHandler", "ActorRecorder"):
        assert resources[function]["Properties"]["Environment"]["Variables"]["AUDITED_TABLES"] == ""
    statements = resources["AuditProducerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert [s["Sid"] for s in statements] == [
        "WriteOwnLogs", "ReadConfigurationStream", "WriteAuditEntries", "SendPoisonRecords", "WriteFailureRecords",
        "ListFailureRecords", "WriteDigests",
    ]  # fmt: skip
    history = resources["ApiHandlerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert [s["Sid"] for s in history] == ["WriteOwnLogs", "ReadAuditHistory", "ReadAuditEntries", "ReadActors"]


@pytest.mark.parametrize(
    "given", [{"AuditedTable1": "FeatureFlags"}, {"AuditedTable2StreamArn": STREAM_ARN.format("Tenants")}]
)
def test_a_table_that_exists_is_given_with_its_stream_or_not_at_all(
    stack_template: dict[str, Any], given: dict[str, str]
) -> None:
    with pytest.raises(AssertionError, match="WithItsStream"):
        resolved(stack_template, **given)


PRIVATE = {"BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}


def test_a_batch_lambda_gives_up_on_goes_whole_into_a_private_bucket_only_the_producer_writes(
    stack_template: dict[str, Any],
) -> None:
    # GIVEN the stack with two tables that exist already
    template = resolved(stack_template, **TWO_EXISTING)
    resources = template["Resources"]
    # THEN every mapping of the producer never gives up while the stream holds a record, and sends what it
    # discards all the same (a record the stream trimmed) to the bucket: S3 receives the batch whole
    [seed] = resources["AuditProducer"]["Properties"]["Events"].values()
    mappings = [seed["Properties"], *(resources[f"AuditedTable{n}EventSourceMapping"]["Properties"] for n in (1, 2))]
    for mapping in mappings:
        assert (mapping["MaximumRetryAttempts"], mapping["MaximumRecordAgeInSeconds"]) == (-1, -1)
        assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": ["FailureBucket", "Arn"]}}}
    # AND the bucket outlives the stack, encrypted, versioned, private, keeping records as long as the digests
    bucket = resources["FailureBucket"]
    assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"
    properties = bucket["Properties"]
    [encryption] = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    assert properties["PublicAccessBlockConfiguration"] == PRIVATE
    [rule] = properties["LifecycleConfiguration"]["Rules"]
    retention = {"Ref": "FailureRecordRetentionDays"}
    assert (rule["Status"], rule["ExpirationInDays"], rule["NoncurrentVersionExpiration"]) == (
        "Enabled", retention, {"NoncurrentDays": retention}
    )  # fmt: skip
    assert template["Parameters"]["FailureRecordRetentionDays"]["Default"] == "2557"  # 7 years, as the digests
    # AND its policy refuses every request without TLS, and every write but the producer role's
    statements = {s["Sid"]: s for s in resources["FailureBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]}
    tls, writes = statements["TlsOnly"], statements["OnlyTheProducerWritesRecords"]
    assert (tls["Effect"], tls["Principal"], tls["Action"]) == ("Deny", "*", "s3:*")
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert tls["Resource"] == [{"Fn::GetAtt": ["FailureBucket", "Arn"]}, {"Fn::Sub": "${FailureBucket.Arn}/*"}]
    assert (writes["Effect"], writes["Principal"], writes["Action"]) == ("Deny", "*", "s3:PutObject")
    role_name = resources["AuditProducerRole"]["Properties"]["RoleName"]["Fn::Sub"]
    assert writes["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]["Fn::Sub"].endswith(f":role/{role_name}")
    assert not [s for s in statements.values() if s["Effect"] == "Allow"]  # reading stays with IAM: no lock-out
    # AND the producer's role may write records there and, beside it, only digests in S3; and only it
    assert _granted(resources["AuditProducerRole"], "s3:PutObject") == {
        '{"Fn::Sub": "${FailureBucket.Arn}/*"}',
        '{"Fn::Sub": "${DigestBucket.Arn}/*"}',
    }
    for other in ("ApiHandlerRole", "ActorRecorderRole"):
        assert not _granted(resources[other], "s3:PutObject")


def test_alarms_say_when_the_shard_is_held_and_when_batches_fail(stack_template: dict[str, Any]) -> None:
    from chalicelib.observability import NAMESPACE, SERVICE

    # GIVEN the stack with no table that exists and no alarm topic
    resources = resolved(stack_template)["Resources"]
    function = [{"Name": "FunctionName", "Value": {"Ref": "AuditProducer"}}]
    # THEN the function's IteratorAge (the worst of its shards) past the threshold fires an alarm
    age = resources["IteratorAgeAlarm"]["Properties"]
    assert (age["Namespace"], age["MetricName"], age["Statistic"], age["Dimensions"]) == (
        "AWS/Lambda", "IteratorAge", "Maximum", function
    )  # fmt: skip
    assert age["Threshold"] == {"Ref": "IteratorAgeAlarmMilliseconds"}
    assert age["ComparisonOperator"] == "GreaterThanThreshold" and "AlarmActions" not in age
    # AND failed batches do: function errors (a misconfiguration raises) plus the batch failures the function
    # reports (an outage answers batchItemFailures, which Lambda never counts as an error), per audited table
    failures = resources["BatchFailuresAlarm"]["Properties"]
    metrics = {m["Id"]: m for m in failures["Metrics"]}
    assert "".join(metrics["failures"]["Expression"]["Fn::Join"][1]) == "SUM([FILL(errors, 0), FILL(reported0, 0)])"
    assert metrics["errors"]["MetricStat"]["Metric"] == {
        "Namespace": "AWS/Lambda", "MetricName": "Errors", "Dimensions": function
    }  # fmt: skip
    # (the dimensions the function puts on its metrics: tests/integration/test_observability.py)
    assert metrics["reported0"]["MetricStat"]["Metric"] == {
        "Namespace": NAMESPACE, "MetricName": "BatchFailures",
        "Dimensions": [{"Name": "service", "Value": SERVICE}, {"Name": "table", "Value": {"Ref": "ConfigurationTable"}}],
    }  # fmt: skip
    assert failures["Threshold"] == {"Ref": "BatchFailuresAlarmThreshold"}
    assert failures["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    # WHEN two tables that exist are audited and a topic is given, THEN theirs count too, and the topic is told
    topic = "arn:aws:sns:us-east-1:123456789012:operations"
    resources = resolved(stack_template, **TWO_EXISTING, AlarmTopicArn=topic)["Resources"]
    failures = resources["BatchFailuresAlarm"]["Properties"]
    metrics = {m["Id"]: m for m in failures["Metrics"]}
    assert "".join(metrics["failures"]["Expression"]["Fn::Join"][1]) == (
        "SUM([FILL(errors, 0), FILL(reported0, 0), FILL(reported1, 0), FILL(reported2, 0)])"
    )
    assert [metrics[f"reported{n}"]["MetricStat"]["Metric"]["Dimensions"][1]["Value"] for n in (1, 2)] == [
        {"Ref": "AuditedTable1"}, {"Ref": "AuditedTable2"}
    ]  # fmt: skip
    for alarm in ("IteratorAgeAlarm", "BatchFailuresAlarm"):
        properties = resources[alarm]["Properties"]
        assert properties["AlarmActions"] == properties["OKActions"] == [{"Ref": "AlarmTopicArn"}]


@pytest.fixture(scope="module")
def terraform(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("terraform")
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    command = [CHALICE, "package", "--stage", "dev", "--pkg-format", "terraform", str(out)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    for file in (ROOT / "infra" / "terraform").glob("*.tf.json"):
        shutil.copy(file, out / file.name)
    return out


def test_terraform_wires_the_stream_by_reference_onto_chalices_own_resources(terraform: Path) -> None:
    chalice = json.loads((terraform / "chalice.tf.json").read_text())["resource"]
    override = json.loads((terraform / "chalice_override.tf.json").read_text())["resource"]
    ours = json.loads((terraform / "audit.tf.json").read_text())
    # every resource the override names exists in Chalice's file, so the override applies
    for kind, resources in override.items():
        assert set(resources) <= set(chalice[kind]), kind
    [mapping] = override["aws_lambda_event_source_mapping"].values()
    assert mapping["event_source_arn"] == "${aws_dynamodb_table.configuration.stream_arn}"
    assert not mapping["event_source_arn"].startswith("arn:")
    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
    assert mapping["bisect_batch_on_function_error"] is True
    assert (mapping["maximum_retry_attempts"], mapping["maximum_record_age_in_seconds"]) == (-1, -1)
    assert mapping["destination_config"]["on_failure"]["destination_arn"] == "${aws_s3_bucket.failures.arn}"
    variables = override["aws_lambda_function"]["audit_producer"]["environment"]["variables"]
    assert variables["CONFIGURATION_STREAM_ARN"] == mapping["event_source_arn"]
    assert variables["REPORT_BATCH_ITEM_FAILURES"] == "true"
    tables = ours["resource"]["aws_dynamodb_table"]
    assert tables["configuration"]["stream_view_type"] == "NEW_AND_OLD_IMAGES"
    history_index, time_index = tables["audit"]["global_secondary_index"]
    assert history_index["name"] == HISTORY_INDEX and history_index["projection_type"] == "ALL"
    assert (time_index["name"], time_index["hash_key"], time_index["range_key"]) == (
        TIME_INDEX,
        "timeShard",
        "timeOrder",
    )
    assert time_index["projection_type"] == "INCLUDE"
    assert time_index["non_key_attributes"] == ["modificationTime", "sequenceNumber", "updatedAttribute"]
    documents = ours["data"]["aws_iam_policy_document"]
    for document in documents.values():
        for statement in document["statement"]:
            assert statement["resources"] != ["*"]
    # the Audit table is append-only here too, and deletion-protected like every table
    assert all(table["deletion_protection_enabled"] is True for table in tables.values())
    policy = ours["resource"]["aws_dynamodb_resource_policy"]["audit"]
    assert policy["resource_arn"] == "${aws_dynamodb_table.audit.arn}"
    actors_policy = ours["resource"]["aws_dynamodb_resource_policy"]["actors"]
    assert actors_policy["resource_arn"] == "${aws_dynamodb_table.actors.arn}"
    actors_only = documents["actors_append_only"]["statement"][1]["condition"][0]["values"]
    assert actors_only == ["${aws_iam_role.actor_recorder_role.arn}"]
    append_only = documents["audit_append_only"]["statement"]
    assert [s["effect"] for s in append_only] == ["Deny", "Deny"]
    assert append_only[1]["condition"][0]["values"] == ["${aws_iam_role.audit_producer_role.arn}"]
    assert "aws_iam_role" in chalice and "audit_producer_role" in chalice["aws_iam_role"]
    # Chalice pins the AWS provider below 5; the override lifts it to where the resource policy exists
    pinned = json.loads((terraform / "chalice_override.tf.json").read_text())["terraform"]
    assert pinned["required_providers"]["aws"]["version"].startswith(">= 5.43.0")
    # the optional trail: write data events of the Configuration table only, into a private bucket
    resources = ours["resource"]
    trail = resources["aws_cloudtrail"]["configuration_writes"]
    assert trail["count"] == resources["aws_s3_bucket"]["trail"]["count"] == "${var.record_actors ? 1 : 0}"
    fields = {f["field"]: f["equals"] for f in trail["advanced_event_selector"][0]["field_selector"]}
    assert fields["resources.ARN"].startswith("${concat([aws_dynamodb_table.configuration.arn], ")
    assert fields["readOnly"] == ["false"]
    assert all(
        v is True
        for k, v in resources["aws_s3_bucket_public_access_block"]["trail"].items()
        if k.startswith(("block", "ignore", "restrict"))
    )
    assert (
        override["aws_iam_role_policy"]["actor_recorder_role"]["policy"]
        == "${data.aws_iam_policy_document.actor_recorder.json}"
    )
    assert override["aws_lambda_function"]["actor_recorder"]["environment"]["variables"]["ACTORS_TABLE_NAME"] == (
        "${aws_dynamodb_table.actors.name}"
    )
    policies = override["aws_iam_role_policy"]
    assert policies["audit_producer_role"]["policy"] == "${data.aws_iam_policy_document.audit_producer.json}"


def test_terraform_audits_tables_that_exist_each_into_a_protected_trail_of_its_own(terraform: Path) -> None:
    chalice = json.loads((terraform / "chalice.tf.json").read_text())["resource"]
    override = json.loads((terraform / "chalice_override.tf.json").read_text())["resource"]
    ours = json.loads((terraform / "audit.tf.json").read_text())
    # GIVEN the tables that exist as a variable: name => stream ARN, none by default
    variable = ours["variable"]["audited_tables"]
    assert (variable["type"], variable["default"]) == ("map(string)", {})
    assert "${name}/stream/" in variable["validation"]["condition"]  # each ARN is its own table's stream
    # THEN each gets a trail shaped and protected as Audit
    resources = ours["resource"]
    tables = resources["aws_dynamodb_table"]
    trail = tables["trail"]
    assert trail["for_each"] == "${var.audited_tables}" and trail["name"] == "${each.key}-audit-${var.stage}"
    assert {k: v for k, v in trail.items() if k not in ("for_each", "name")} == {
        k: v for k, v in tables["audit"].items() if k != "name"
    }
    assert trail["deletion_protection_enabled"] is True and trail["point_in_time_recovery"] == {"enabled": True}
    # AND an append-only policy each: no change by anyone, no write but by the producer's role
    policy = resources["aws_dynamodb_resource_policy"]["trail"]
    assert policy["for_each"] == "${aws_dynamodb_table.trail}" and policy["resource_arn"] == "${each.value.arn}"
    assert policy["policy"] == "${data.aws_iam_policy_document.trail_append_only[each.key].json}"
    documents = ours["data"]["aws_iam_policy_document"]
    append_only = documents["trail_append_only"]
    assert append_only["for_each"] == "${aws_dynamodb_table.trail}"
    assert append_only["statement"] == [
        {**statement, "resources": ["${each.value.arn}"]} for statement in documents["audit_append_only"]["statement"]
    ]
    # AND one mapping per stream onto Chalice's function, with the very settings of the Configuration stream's
    mapping = resources["aws_lambda_event_source_mapping"]["audited"]
    [(name, seed)] = chalice["aws_lambda_event_source_mapping"].items()
    seed = {**seed, **override["aws_lambda_event_source_mapping"][name]}
    assert mapping == {
        "for_each": "${var.audited_tables}",
        **{k: v for k, v in seed.items() if k != "event_source_arn"},
        "event_source_arn": "${each.value}",
    }
    assert mapping["function_name"] == "${aws_lambda_function.audit_producer.arn}"
    # AND the producer may read exactly those streams and write exactly those trails, the history route query them
    statements = {s["sid"]: s["resources"] for s in documents["audit_producer"]["statement"]}
    assert statements["ReadConfigurationStream"] == (
        "${concat([aws_dynamodb_table.configuration.stream_arn], values(var.audited_tables))}"
    )
    assert statements["WriteAuditEntries"] == (
        "${concat([aws_dynamodb_table.audit.arn], [for trail in aws_dynamodb_table.trail : trail.arn])}"
    )
    history = {s["sid"]: s["resources"] for s in documents["api_handler"]["statement"]}
    assert f'"${{arn}}/index/{HISTORY_INDEX}", "${{arn}}/index/{TIME_INDEX}"' in history["ReadAuditHistory"]
    assert "[for trail in aws_dynamodb_table.trail : trail.arn]" in history["ReadAuditHistory"]
    assert history["ReadAuditEntries"] == statements["WriteAuditEntries"]  # every trail, and nothing else
    # AND every function knows every pair, and none where no table that exists is given
    for function in ("audit_producer", "api_handler", "actor_recorder"):
        audited = override["aws_lambda_function"][function]["environment"]["variables"]["AUDITED_TABLES"]
        assert audited.startswith('${length(var.audited_tables) == 0 ? "" : join(",", concat(')
        assert '[for name, trail in aws_dynamodb_table.trail : "${name}=${trail.name}"]' in audited
    # AND CloudTrail logs their write calls too, for actor_recorder
    selector = resources["aws_cloudtrail"]["configuration_writes"]["advanced_event_selector"][0]["field_selector"]
    arns = next(f["equals"] for f in selector if f["field"] == "resources.ARN")
    assert "[for name in keys(var.audited_tables) : " in arns and ":table/${name}" in arns


def test_terraform_keeps_what_lambda_gives_up_on_and_alarms_as_the_stack_does(terraform: Path) -> None:
    ours = json.loads((terraform / "audit.tf.json").read_text())
    override = json.loads((terraform / "chalice_override.tf.json").read_text())["resource"]
    resources, documents = ours["resource"], ours["data"]["aws_iam_policy_document"]
    # THEN every mapping never gives up while the stream holds a record, and sends what it discards to the bucket
    [seed] = override["aws_lambda_event_source_mapping"].values()
    for mapping in (seed, resources["aws_lambda_event_source_mapping"]["audited"]):
        assert (mapping["maximum_retry_attempts"], mapping["maximum_record_age_in_seconds"]) == (-1, -1)
        assert mapping["destination_config"] == {"on_failure": {"destination_arn": "${aws_s3_bucket.failures.arn}"}}
    variables = override["aws_lambda_function"]["audit_producer"]["environment"]["variables"]
    assert variables["FAILURE_BUCKET"] == "${aws_s3_bucket.failures.id}" == ours["output"]["failure_bucket"]["value"]
    # AND the bucket is versioned, encrypted, private, kept as long as the digests, TLS only, written by one role
    bucket = "${aws_s3_bucket.failures.id}"
    assert resources["aws_s3_bucket"]["failures"]["lifecycle"] == {"prevent_destroy": True}
    assert resources["aws_s3_bucket_versioning"]["failures"]["versioning_configuration"] == {"status": "Enabled"}
    encryption = resources["aws_s3_bucket_server_side_encryption_configuration"]["failures"]
    assert encryption["rule"][0]["apply_server_side_encryption_by_default"] == {"sse_algorithm": "AES256"}
    private = resources["aws_s3_bucket_public_access_block"]["failures"]
    assert private["bucket"] == bucket and all(private[k] is True for k in
                                               ("block_public_acls", "block_public_policy", "ignore_public_acls",
                                                "restrict_public_buckets"))  # fmt: skip
    [rule] = resources["aws_s3_bucket_lifecycle_configuration"]["failures"]["rule"]
    assert rule["expiration"] == {"days": "${var.failure_record_retention_days}"}
    assert rule["noncurrent_version_expiration"] == {"noncurrent_days": "${var.failure_record_retention_days}"}
    assert ours["variable"]["failure_record_retention_days"]["default"] == 2557
    assert (
        resources["aws_s3_bucket_policy"]["failures"]["policy"] == "${data.aws_iam_policy_document.failure_bucket.json}"
    )
    tls, writes = documents["failure_bucket"]["statement"]
    assert (tls["effect"], tls["actions"], tls["condition"][0]["variable"]) == ("Deny", ["s3:*"], "aws:SecureTransport")
    assert (writes["effect"], writes["actions"]) == ("Deny", ["s3:PutObject"])
    assert writes["condition"] == [{"test": "ArnNotEquals", "variable": "aws:PrincipalArn",
                                    "values": ["${aws_iam_role.audit_producer_role.arn}"]}]  # fmt: skip
    producer = {s["sid"]: s for s in documents["audit_producer"]["statement"]}
    assert producer["WriteFailureRecords"]["resources"] == ["${aws_s3_bucket.failures.arn}/*"]
    assert producer["ListFailureRecords"]["resources"] == ["${aws_s3_bucket.failures.arn}"]
    # AND the two alarms watch the function, the second every audited table's reported failures too
    alarms = resources["aws_cloudwatch_metric_alarm"]
    age = alarms["iterator_age"]
    assert (age["metric_name"], age["statistic"], age["threshold"]) == (
        "IteratorAge", "Maximum", "${var.iterator_age_alarm_ms}"
    )  # fmt: skip
    assert age["dimensions"] == {"FunctionName": "${aws_lambda_function.audit_producer.function_name}"}
    failures = alarms["batch_failures"]
    queries = {q["id"]: q for q in failures["metric_query"]}
    assert "FILL(errors, 0), FILL(reported0, 0)" in queries["failures"]["expression"]
    assert (
        '[for i, name in keys(var.audited_tables) : ", FILL(reported${i + 1}, 0)"]' in queries["failures"]["expression"]
    )
    assert queries["reported0"]["metric"]["dimensions"] == {"service": "config-audit",
                                                             "table": "${aws_dynamodb_table.configuration.name}"}  # fmt: skip
    extra = failures["dynamic"]["metric_query"]
    assert extra["for_each"] == "${keys(var.audited_tables)}" and extra["content"]["metric"]["dimensions"]["table"] == (
        "${metric_query.value}"
    )
    assert age["alarm_actions"] == failures["ok_actions"] == '${var.alarm_topic_arn == "" ? [] : [var.alarm_topic_arn]}'


def test_workflows_parse_and_call_makefile_targets_that_exist() -> None:
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))
    workflows = {p.stem: yaml.safe_load(p.read_text()) for p in (ROOT / ".github" / "workflows").glob("*.yml")}
    assert set(workflows) == {"ci", "deploy"}
    for workflow in workflows.values():
        for job in workflow["jobs"].values():
            for step in job["steps"]:
                for called in re.findall(r"\bmake ([a-z][a-z-]*)", step.get("run", "")):
                    assert called in targets, called
    ci_runs = [s.get("run", "") for s in workflows["ci"]["jobs"]["test"]["steps"]]
    assert "make test" in ci_runs
    triggers = workflows["ci"][True]  # YAML reads the key `on` as true
    assert "push" in triggers and "pull_request" in triggers
    deploy = workflows["deploy"]
    assert "workflow_dispatch" in deploy[True]
    assert deploy["permissions"]["id-token"] == "write"
    credentials = next(s for s in deploy["jobs"]["deploy"]["steps"] if "configure-aws-credentials" in s.get("uses", ""))
    assert "role-to-assume" in credentials["with"] and "aws-access-key-id" not in credentials["with"]


def test_terraform_lets_each_function_write_only_its_own_log_group(terraform: Path) -> None:
    chalice = json.loads((terraform / "chalice.tf.json").read_text())["resource"]["aws_lambda_function"]
    documents = json.loads((terraform / "audit.tf.json").read_text())["data"]["aws_iam_policy_document"]
    for function in ("audit_producer", "api_handler", "actor_recorder"):
        assert function in chalice  # the function the reference names is Chalice's own
        [logs] = [s for s in documents[function]["statement"] if s["sid"] == "WriteOwnLogs"]
        group = logs["resources"][0]
        assert group.endswith(f":log-group:/aws/lambda/${{aws_lambda_function.{function}.function_name}}")
        assert logs["resources"] == [group, f"{group}:*"]


DIGEST_LOCK = {"s3:DeleteObject*", "s3:PutBucketObjectLockConfiguration", "s3:PutObjectRetention",
               "s3:BypassGovernanceRetention", "s3:PutObjectLegalHold"}  # fmt: skip


def test_the_stack_keeps_digests_in_a_compliance_locked_bucket_only_the_producer_writes(
    stack_template: dict[str, Any],
) -> None:
    resources = stack_template["Resources"]
    bucket = resources["DigestBucket"]["Properties"]
    # Object Lock in compliance mode, 2,557 days unless the stack says otherwise; versioned, encrypted, private
    assert bucket["ObjectLockEnabled"] is True
    assert bucket["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": {"Ref": "DigestRetentionDays"}}},
    }
    assert stack_template["Parameters"]["DigestRetentionDays"]["Default"] == 2557
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert resources["DigestBucket"]["DeletionPolicy"] == "Retain"
    # nobody deletes a digest or loosens the lock; nobody but the producer's role writes; TLS only
    kept, writes, tls = resources["DigestBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert (kept["Effect"], kept["Principal"], set(kept["Action"])) == ("Deny", "*", DIGEST_LOCK)
    assert "Condition" not in kept
    assert (writes["Effect"], writes["Principal"], writes["Action"]) == ("Deny", "*", ["s3:PutObject"])
    role_name = resources["AuditProducerRole"]["Properties"]["RoleName"]["Fn::Sub"]
    assert writes["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]["Fn::Sub"].endswith(f":role/{role_name}")
    assert (tls["Effect"], tls["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": "false"}})
    # the producer is told where, and its role may put objects there
    variables = resources["AuditProducer"]["Properties"]["Environment"]["Variables"]
    assert variables["DIGEST_BUCKET"] == {"Ref": "DigestBucket"}
    granted = _granted(resolved(stack_template)["Resources"]["AuditProducerRole"], "s3:PutObject")
    assert granted == {json.dumps({"Fn::Sub": f"${{{bucket}.Arn}}/*"}) for bucket in ("DigestBucket", "FailureBucket")}


def test_terraform_keeps_digests_in_a_compliance_locked_bucket_only_the_producer_writes(terraform: Path) -> None:
    ours = json.loads((terraform / "audit.tf.json").read_text())
    resources = ours["resource"]
    assert resources["aws_s3_bucket"]["digests"]["object_lock_enabled"] is True
    lock = resources["aws_s3_bucket_object_lock_configuration"]["digests"]["rule"]["default_retention"]
    assert lock == {"mode": "COMPLIANCE", "days": "${var.digest_retention_days}"}
    assert ours["variable"]["digest_retention_days"]["default"] == 2557
    assert resources["aws_s3_bucket_versioning"]["digests"]["versioning_configuration"] == {"status": "Enabled"}
    assert resources["aws_s3_bucket_server_side_encryption_configuration"]["digests"]["rule"]
    assert all(v is True for k, v in resources["aws_s3_bucket_public_access_block"]["digests"].items() if k != "bucket")
    assert resources["aws_s3_bucket"]["trail"]  # the CloudTrail bucket is still there beside it
    documents = ours["data"]["aws_iam_policy_document"]
    kept, writes, tls = documents["digest_bucket"]["statement"]
    assert (kept["effect"], set(kept["actions"])) == ("Deny", DIGEST_LOCK)
    assert writes["condition"][0]["values"] == ["${aws_iam_role.audit_producer_role.arn}"]
    assert tls["condition"][0]["variable"] == "aws:SecureTransport"
    puts = [s["resources"] for s in documents["audit_producer"]["statement"] if "s3:PutObject" in s["actions"]]
    assert sorted(puts) == [["${aws_s3_bucket.digests.arn}/*"], ["${aws_s3_bucket.failures.arn}/*"]]
    override = json.loads((terraform / "chalice_override.tf.json").read_text())["resource"]
    variables = override["aws_lambda_function"]["audit_producer"]["environment"]["variables"]
    assert variables["DIGEST_BUCKET"] == "${aws_s3_bucket.digests.id}"
