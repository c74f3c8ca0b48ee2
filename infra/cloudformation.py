"""The CloudFormation merge template: everything `chalice package` cannot express, in one stack.

    python -m infra.cloudformation          # writes infra/cloudformation/merge.json
    python -m infra.cloudformation --check  # fails if the committed file differs

`make package` merges it into Chalice's SAM template (`chalice package --merge-template`): both
tables (from infra/tables.py), the stream wired by Fn::GetAtt, the event source mapping settings
(partial batch responses, bisection, bounded retries and record age, an SQS on-failure
destination), the stage variables by reference, an optional SNS topic, and one least-privilege
role per function (statements from infra/policy.py, resources by reference).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from chalicelib.audit_repository import HISTORY_INDEX
from infra.policy import append_only_table_policy, history_statements, producer_statements, redaction_statements
from infra.tables import audit_table, configuration_table

ROOT = Path(__file__).resolve().parent.parent
MERGE_TEMPLATE = ROOT / "infra" / "cloudformation" / "merge.json"

# Named, not generated: the Audit table's own policy names the table and the one role that may
# write it by these, so that neither depends on the other (the role's policy names the table).
AUDIT_TABLE_NAME = "${AWS::StackName}-audit"
PRODUCER_ROLE_NAME = "${AWS::StackName}-audit-producer"  # IAM allows 64 characters: stack names up to 49

# Lambda event source mapping settings Chalice's decorator cannot take
MAXIMUM_RETRY_ATTEMPTS = 10
MAXIMUM_RECORD_AGE_SECONDS = 86_400  # a DynamoDB stream keeps records for 24 hours


def _table(definition: dict[str, Any]) -> dict[str, Any]:
    """A CreateTable definition as an AWS::DynamoDB::Table (CloudFormation names it)."""
    properties = {key: value for key, value in definition.items() if key != "TableName"}
    if "StreamSpecification" in properties:
        properties["StreamSpecification"] = {"StreamViewType": properties["StreamSpecification"]["StreamViewType"]}
    properties["PointInTimeRecoverySpecification"] = {"PointInTimeRecoveryEnabled": True}
    properties["SSESpecification"] = {"SSEEnabled": True}
    properties["DeletionProtectionEnabled"] = True
    # an audit trail (and the settings it audits) must outlive the stack that writes it
    return {
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": properties,
    }


def _role(name: str, statements: list[Any]) -> dict[str, Any]:
    return {
        "Properties": {
            "Policies": [{"PolicyName": name, "PolicyDocument": {"Version": "2012-10-17", "Statement": statements}}]
        }
    }


def merge_template() -> dict[str, Any]:
    # SAM names functions <stack>-<logical id>-<suffix>: their log groups, and no others
    log_groups = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/${AWS::StackName}-*"
    logs = {"Fn::Sub": log_groups}
    stream = {"Fn::GetAtt": ["ConfigurationTable", "StreamArn"]}
    audit = {"Fn::GetAtt": ["AuditTable", "Arn"]}
    queue = {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    topic = {"Ref": "ChangeTopic"}
    producer = producer_statements(logs, stream, audit, None, queue)
    publish = producer_statements(logs, stream, audit, topic, None)[-1]
    producer.append({"Fn::If": ["NotifyChangesOn", publish, {"Ref": "AWS::NoValue"}]})
    parameter = {
        "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${RedactionKeyParameter}"
    }
    kms_key = {"Ref": "RedactionKmsKeyArn"}
    read_key, decrypt_key = redaction_statements(parameter, kms_key, {"Fn::Sub": "ssm.${AWS::Region}.amazonaws.com"})
    producer.append({"Fn::If": ["RedactionOn", read_key, {"Ref": "AWS::NoValue"}]})
    producer.append({"Fn::If": ["CustomerManagedRedactionKey", decrypt_key, {"Ref": "AWS::NoValue"}]})
    audit_table_arn = {
        "Fn::Sub": f"arn:${{AWS::Partition}}:dynamodb:${{AWS::Region}}:${{AWS::AccountId}}:table/{AUDIT_TABLE_NAME}"
    }
    producer_role_arn = {"Fn::Sub": f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role/{PRODUCER_ROLE_NAME}"}
    audit_resource = _table(audit_table("Audit"))
    audit_resource["Properties"]["TableName"] = {"Fn::Sub": AUDIT_TABLE_NAME}
    audit_resource["Properties"]["ResourcePolicy"] = {
        "PolicyDocument": append_only_table_policy(audit_table_arn, producer_role_arn)
    }
    producer_role = _role("AuditProducer", producer)
    producer_role["Properties"]["RoleName"] = {"Fn::Sub": PRODUCER_ROLE_NAME}
    variables = {
        "CONFIGURATION_TABLE_NAME": {"Ref": "ConfigurationTable"},
        "AUDIT_TABLE_NAME": {"Ref": "AuditTable"},
    }
    return {
        "Parameters": {
            "NotifyChanges": {
                "Type": "String",
                "AllowedValues": ["true", "false"],
                "Default": "false",
                "Description": "Publish every audit entry to an SNS topic the stack creates",
            },
            "RedactAttributes": {
                "Type": "String",
                "Default": "",
                "Description": "Attribute names never stored in plain: comma-separated shell patterns, any case "
                "(for example *password*,*secret*,*token*,apiKey); needs RedactionKeyParameter",
            },
            "RedactionKeyParameter": {
                "Type": "String",
                "Default": "",
                "AllowedPattern": "^$|^(/[A-Za-z0-9_.-]+)+$",
                "Description": "SSM SecureString parameter (a path from /) holding the redaction HMAC key",
            },
            "RedactionKmsKeyArn": {
                "Type": "String",
                "Default": "",
                "Description": "The customer managed KMS key of that parameter, if any (recommended over aws/ssm)",
            },
        },
        "Rules": {
            "RedactionNeedsAKey": {
                "RuleCondition": {"Fn::Not": [{"Fn::Equals": [{"Ref": "RedactAttributes"}, ""]}]},
                "Assertions": [
                    {
                        "Assert": {"Fn::Not": [{"Fn::Equals": [{"Ref": "RedactionKeyParameter"}, ""]}]},
                        "AssertDescription": "RedactAttributes needs RedactionKeyParameter "
                        "(python -m infra.redaction_key NAME creates one)",
                    }
                ],
            }
        },
        "Conditions": {
            "NotifyChangesOn": {"Fn::Equals": [{"Ref": "NotifyChanges"}, "true"]},
            "RedactionOn": {"Fn::Not": [{"Fn::Equals": [{"Ref": "RedactAttributes"}, ""]}]},
            "CustomerManagedRedactionKey": {
                "Fn::And": [
                    {"Condition": "RedactionOn"},
                    {"Fn::Not": [{"Fn::Equals": [{"Ref": "RedactionKmsKeyArn"}, ""]}]},
                ]
            },
        },
        "Resources": {
            "ConfigurationTable": _table(configuration_table("Configuration")),
            "AuditTable": audit_resource,
            "DeadLetterQueue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"MessageRetentionPeriod": 1_209_600, "SqsManagedSseEnabled": True},
            },
            "ChangeTopic": {"Type": "AWS::SNS::Topic", "Condition": "NotifyChangesOn"},
            "AuditProducer": {
                "Properties": {
                    "Environment": {
                        "Variables": {
                            **variables,
                            "CONFIGURATION_STREAM_ARN": stream,
                            "REPORT_BATCH_ITEM_FAILURES": "true",  # with FunctionResponseTypes below, always together
                            "DEAD_LETTER_QUEUE_URL": {"Ref": "DeadLetterQueue"},
                            "CHANGE_TOPIC_ARN": {"Fn::If": ["NotifyChangesOn", topic, ""]},
                            "REDACT_ATTRIBUTES": {"Ref": "RedactAttributes"},
                            "REDACTION_KEY_PARAMETER": {"Ref": "RedactionKeyParameter"},
                        }
                    },
                    "Events": {
                        "AuditProducerDynamodbEventSource": {
                            "Type": "DynamoDB",
                            "Properties": {
                                "Stream": stream,
                                "StartingPosition": "TRIM_HORIZON",
                                "BatchSize": 100,
                                "MaximumBatchingWindowInSeconds": 0,
                                "FunctionResponseTypes": ["ReportBatchItemFailures"],
                                "BisectBatchOnFunctionError": True,
                                "MaximumRetryAttempts": MAXIMUM_RETRY_ATTEMPTS,
                                "MaximumRecordAgeInSeconds": MAXIMUM_RECORD_AGE_SECONDS,
                                "DestinationConfig": {"OnFailure": {"Type": "SQS", "Destination": queue}},
                            },
                        }
                    },
                }
            },
            "AuditProducerRole": producer_role,
            "APIHandler": {"Properties": {"Environment": {"Variables": variables}}},
            "ApiHandlerRole": _role(
                "AuditHistory", history_statements(logs, {"Fn::Sub": f"${{AuditTable.Arn}}/index/{HISTORY_INDEX}"})
            ),
        },
        "Outputs": {
            "ConfigurationTableName": {"Value": {"Ref": "ConfigurationTable"}},
            "ConfigurationStreamArn": {"Value": stream},
            "AuditTableName": {"Value": {"Ref": "AuditTable"}},
            "DeadLetterQueueUrl": {"Value": {"Ref": "DeadLetterQueue"}},
            "ChangeTopicArn": {"Condition": "NotifyChangesOn", "Value": topic},
        },
    }


def render() -> str:
    return json.dumps(merge_template(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if the committed file differs")
    args = parser.parse_args(argv)
    if args.check:
        if not MERGE_TEMPLATE.exists() or MERGE_TEMPLATE.read_text() != render():
            print(f"{MERGE_TEMPLATE} is out of date: run python -m infra.cloudformation", file=sys.stderr)
            return 1
        return 0
    MERGE_TEMPLATE.write_text(render())
    print(f"wrote {MERGE_TEMPLATE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
