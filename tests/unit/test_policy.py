"""Least privilege: the stage's policy is derived, committed, and fails a test if it widens."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.policy import ROOT, policy_for, queue_arn, render, stage_environment

EXPECTED_ACTIONS = {
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
    "dynamodb:BatchWriteItem",
    "dynamodb:Query",
    "ssm:GetParameter",
}


def committed(stage: str = "dev") -> dict[str, Any]:
    policy: dict[str, Any] = json.loads((ROOT / ".chalice" / f"policy-{stage}.json").read_text())
    return policy


def test_committed_policy_is_the_derived_one() -> None:
    text = (ROOT / ".chalice" / "policy-dev.json").read_text()
    assert text == render(policy_for("dev", stage_environment("dev")))


def test_policy_grants_exactly_the_actions_used() -> None:
    actions = {action for s in committed()["Statement"] for action in s["Action"]}
    assert actions == EXPECTED_ACTIONS


def test_no_statement_is_wider_than_its_resource() -> None:
    env = stage_environment("dev")
    for statement in committed()["Statement"]:
        resource = statement["Resource"]
        assert isinstance(resource, str) and resource != "*"
        assert "*" not in resource or resource.startswith("arn:aws:logs:")
        if statement["Sid"] == "ReadConfigurationStream":
            assert resource == env["CONFIGURATION_STREAM_ARN"]
        if statement["Sid"] == "WriteAuditEntries":
            assert resource.endswith(f":table/{env['AUDIT_TABLE_NAME']}")
        if statement["Sid"] == "ReadAuditHistory":
            assert resource.endswith(f":table/{env['AUDIT_TABLE_NAME']}/index/itemKey-modificationTime-index")
        if statement["Sid"] == "ReadRedactionKey":
            assert resource.endswith(f":parameter/{env['REDACTION_KEY_PARAMETER'].lstrip('/')}")


def test_optional_topic_and_queue_add_one_scoped_statement_each() -> None:
    env = {
        **stage_environment("dev"),
        "CHANGE_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:config-changes",
        "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/config-audit-dlq",
    }
    extra = {s["Sid"]: s for s in policy_for("dev", env)["Statement"]}
    assert extra["PublishChanges"]["Resource"] == env["CHANGE_TOPIC_ARN"]
    assert extra["SendPoisonRecords"]["Resource"] == "arn:aws:sqs:us-east-1:123456789012:config-audit-dlq"


def test_queue_arn_from_url() -> None:
    assert queue_arn("http://sqs.eu-west-1.localhost:5000/000000000000/q") == "arn:aws:sqs:eu-west-1:000000000000:q"


def test_policy_refuses_a_stream_arn_that_is_not_one() -> None:
    with pytest.raises(ValueError, match="CONFIGURATION_STREAM_ARN is not a DynamoDB stream ARN"):
        policy_for("dev", {"CONFIGURATION_STREAM_ARN": "nope", "AUDIT_TABLE_NAME": "Audit"})


def test_a_customer_managed_key_is_decryptable_through_ssm_only() -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    statements = {
        s["Sid"]: s for s in policy_for("dev", {**stage_environment("dev"), "REDACTION_KMS_KEY_ARN": key})["Statement"]
    }
    assert statements["DecryptRedactionKey"]["Resource"] == key
    assert statements["DecryptRedactionKey"]["Condition"] == {
        "StringEquals": {"kms:ViaService": "ssm.us-east-1.amazonaws.com"}
    }


def test_without_redaction_no_parameter_is_readable() -> None:
    env = {k: v for k, v in stage_environment("dev").items() if k != "REDACT_ATTRIBUTES"}
    assert not any(s["Sid"].endswith("RedactionKey") for s in policy_for("dev", env)["Statement"])
