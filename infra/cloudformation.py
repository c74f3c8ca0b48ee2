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
from infra.policy import history_statements, producer_statements
from infra.tables import audit_table, configuration_table

ROOT = Path(__file__).resolve().parent.parent
MERGE_TEMPLATE = ROOT / "infra" / "cloudformation" / "merge.json"

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
            }
        },
        "Conditions": {"NotifyChangesOn": {"Fn::Equals": [{"Ref": "NotifyChanges"}, "true"]}},
        "Resources": {
            "ConfigurationTable": _table(configuration_table("Configuration")),
            "AuditTable": _table(audit_table("Audit")),
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
            "AuditProducerRole": _role("AuditProducer", producer),
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
