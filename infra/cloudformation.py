"""The CloudFormation merge template: everything `chalice package` cannot express, in one stack.

    python -m infra.cloudformation          # writes infra/cloudformation/merge.json
    python -m infra.cloudformation --check  # fails if the committed file differs

`make package` merges it into Chalice's SAM template (`chalice package --merge-template`): both
tables (from infra/tables.py), the stream wired by Fn::GetAtt, the event source mapping settings
(partial batch responses, bisection, no retry limit and no record age limit, an S3 on-failure
destination that receives each discarded batch whole), alarms on the function's iterator age and
batch failures, the stage variables by reference, an optional SNS topic, one least-privilege
role per function (statements from infra/policy.py, resources by reference), and the digest bucket
(Object Lock in compliance mode, DigestRetentionDays, written by the producer's role alone). Up to
AUDITED_TABLE_SLOTS tables that exist already (parameters AuditedTableN and AuditedTableNStreamArn)
are audited beside Configuration by the same function: each gets a trail of its own, protected as
Audit, and a mapping on its stream with the same settings; the roles grant their streams and
trails, and AUDITED_TABLES names every pair. With no such table the stack is the seed's alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from chalicelib.actors.cloudtrail import WRITE_CALLS
from chalicelib.audit.repository import HISTORY_INDEX, TIME_INDEX
from chalicelib.observability import NAMESPACE, SERVICE
from chalicelib.settings import DEFAULT_DIGEST_RETENTION_DAYS, MAX_DIGEST_RETENTION_DAYS
from infra.policy import (
    append_only_table_policy,
    digest_bucket_policy,
    digest_statements,
    failure_bucket_policy,
    failure_record_statements,
    history_statements,
    producer_statements,
    recorder_statements,
    redaction_statements,
)
from infra.tables import actors_table, audit_table, configuration_table

ROOT = Path(__file__).resolve().parent.parent
MERGE_TEMPLATE = ROOT / "infra" / "cloudformation" / "merge.json"

# Named, not generated: the Audit table's own policy names the table and the one role that may
# write it by these, so that neither depends on the other (the role's policy names the table).
AUDIT_TABLE_NAME = "${AWS::StackName}-audit"
PRODUCER_ROLE_NAME = "${AWS::StackName}-audit-producer"  # IAM allows 64 characters: stack names up to 49
ACTORS_TABLE_NAME = "${AWS::StackName}-audit-actors"
RECORDER_ROLE_NAME = "${AWS::StackName}-actor-recorder"
TRAIL_NAME = "${AWS::StackName}-configuration-writes"

# Lambda event source mapping settings Chalice's decorator cannot take. -1: never give up on a record
# the stream still holds. Poison records never fail the function (it sets them aside), so the only
# failures are outages and misconfiguration, which must hold the shard until fixed (SPEC.md).
MAXIMUM_RETRY_ATTEMPTS = -1
MAXIMUM_RECORD_AGE_SECONDS = -1

# The on-failure bucket keeps a record at least as long as the trail's digests are locked (7 years)
FAILURE_RECORD_RETENTION_DAYS = 2557
# The alarms' defaults: the shard held 10 minutes behind; one failed batch a minute, 3 minutes in 5
ITERATOR_AGE_ALARM_MILLISECONDS = 600_000
BATCH_FAILURES_ALARM_THRESHOLD = 1
ALARM_PERIOD_SECONDS = 60
ALARM_EVALUATION_PERIODS = 5
ALARM_DATAPOINTS = 3

# Tables that exist already, audited beside the Configuration table the stack makes: a template
# cannot loop over a parameter without a macro, so each is a slot of two parameters (its name, its
# stream ARN); an empty slot adds nothing. More: raise this and run python -m infra.cloudformation.
AUDITED_TABLE_SLOTS = 3
NO_VALUE = {"Ref": "AWS::NoValue"}


def _mapping_settings() -> dict[str, Any]:
    """What every event source mapping of the producer sets beside its stream and on-failure bucket."""
    return {
        "StartingPosition": "TRIM_HORIZON",
        "BatchSize": 100,
        "MaximumBatchingWindowInSeconds": 0,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "BisectBatchOnFunctionError": True,
        "MaximumRetryAttempts": MAXIMUM_RETRY_ATTEMPTS,
        "MaximumRecordAgeInSeconds": MAXIMUM_RECORD_AGE_SECONDS,
    }


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


# What every bucket of the stack has: encrypted, no public access, objects owned by the account
PRIVATE_BUCKET = {
    "BucketEncryption": {
        "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    },
    "PublicAccessBlockConfiguration": {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    },
    "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
}


def _indexes(trail: str) -> list[dict[str, str]]:
    """The history and time indexes of the trail table resource ``trail``."""
    return [{"Fn::Sub": f"${{{trail}.Arn}}/index/{index}"} for index in (HISTORY_INDEX, TIME_INDEX)]


def _arn(service: str, resource: str) -> dict[str, str]:
    """An ARN in this stack's partition, region and account."""
    return {"Fn::Sub": f"arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:{resource}"}


def _role_arn(name: str) -> dict[str, str]:
    return {"Fn::Sub": f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role/{name}"}


def _trail() -> dict[str, Any]:
    """A trail of the audited tables' write calls only, and its private bucket."""
    bucket_arn = {"Fn::GetAtt": ["TrailBucket", "Arn"]}
    trail_arn = {
        "Fn::Sub": f"arn:${{AWS::Partition}}:cloudtrail:${{AWS::Region}}:${{AWS::AccountId}}:trail/{TRAIL_NAME}"
    }
    cloudtrail = {"Service": "cloudtrail.amazonaws.com"}
    from_this_trail = {"StringEquals": {"aws:SourceArn": trail_arn}}
    return {
        "TrailBucket": {
            "Type": "AWS::S3::Bucket",
            "Condition": "RecordActorsOn",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                **PRIVATE_BUCKET,
                "VersioningConfiguration": {"Status": "Enabled"},
            },
        },
        "TrailBucketPolicy": {
            "Type": "AWS::S3::BucketPolicy",
            "Condition": "RecordActorsOn",
            "Properties": {
                "Bucket": {"Ref": "TrailBucket"},
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "CloudTrailChecksTheBucket",
                            "Effect": "Allow",
                            "Principal": cloudtrail,
                            "Action": "s3:GetBucketAcl",
                            "Resource": bucket_arn,
                            "Condition": from_this_trail,
                        },
                        {
                            "Sid": "CloudTrailWritesItsLogs",
                            "Effect": "Allow",
                            "Principal": cloudtrail,
                            "Action": "s3:PutObject",
                            "Resource": {"Fn::Sub": "${TrailBucket.Arn}/AWSLogs/${AWS::AccountId}/*"},
                            "Condition": from_this_trail,
                        },
                        {
                            "Sid": "TlsOnly",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [bucket_arn, {"Fn::Sub": "${TrailBucket.Arn}/*"}],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        },
                    ],
                },
            },
        },
        "ConfigurationWritesTrail": {
            "Type": "AWS::CloudTrail::Trail",
            "Condition": "RecordActorsOn",
            "DependsOn": ["TrailBucketPolicy"],
            "Properties": {
                "TrailName": {"Fn::Sub": TRAIL_NAME},
                "S3BucketName": {"Ref": "TrailBucket"},
                "IsLogging": True,
                "IsMultiRegionTrail": False,
                "IncludeGlobalServiceEvents": False,
                "EnableLogFileValidation": True,
                "AdvancedEventSelectors": [
                    {
                        "Name": "Write calls on the audited tables, and nothing else",
                        "FieldSelectors": [
                            {"Field": "eventCategory", "Equals": ["Data"]},
                            {"Field": "resources.type", "Equals": ["AWS::DynamoDB::Table"]},
                            {
                                "Field": "resources.ARN",
                                "Equals": [
                                    {"Fn::GetAtt": ["ConfigurationTable", "Arn"]},
                                    *(
                                        {"Fn::If": [f"{slot}On", _arn("dynamodb", f"table/${{{slot}}}"), NO_VALUE]}
                                        for slot in _slots()
                                    ),
                                ],
                            },
                            {"Field": "readOnly", "Equals": ["false"]},
                            {"Field": "eventName", "Equals": sorted(WRITE_CALLS)},
                        ],
                    }
                ],
            },
        },
    }


def _digest_bucket() -> dict[str, Any]:
    """The digest bucket (DIGEST_BUCKET): Object Lock in compliance mode, versioned, private, TLS only;
    only the producer's role writes it (named, like the Audit table's writer: no dependency cycle)."""
    bucket_arn = {"Fn::GetAtt": ["DigestBucket", "Arn"]}
    return {
        "DigestBucket": {
            "Type": "AWS::S3::Bucket",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "ObjectLockEnabled": True,
                "ObjectLockConfiguration": {
                    "ObjectLockEnabled": "Enabled",
                    "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": {"Ref": "DigestRetentionDays"}}},
                },
                "VersioningConfiguration": {"Status": "Enabled"},
                **PRIVATE_BUCKET,
            },
        },
        "DigestBucketPolicy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": {"Ref": "DigestBucket"},
                "PolicyDocument": digest_bucket_policy(
                    bucket_arn, {"Fn::Sub": "${DigestBucket.Arn}/*"}, _role_arn(PRODUCER_ROLE_NAME)
                ),
            },
        },
    }


def _failure_bucket() -> dict[str, Any]:
    """The on-failure destination: a batch Lambda gives up on, kept whole, private, for `config-audit recover`."""
    bucket_arn = {"Fn::GetAtt": ["FailureBucket", "Arn"]}
    objects_arn = {"Fn::Sub": "${FailureBucket.Arn}/*"}
    retention = {"Ref": "FailureRecordRetentionDays"}
    return {
        "FailureBucket": {
            "Type": "AWS::S3::Bucket",
            "DeletionPolicy": "Retain",  # the changes in it are in no trail yet
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                **PRIVATE_BUCKET,
                "VersioningConfiguration": {"Status": "Enabled"},
                "LifecycleConfiguration": {
                    "Rules": [
                        {
                            "Id": "KeepFailureRecordsAsLongAsTheDigests",
                            "Status": "Enabled",
                            "ExpirationInDays": retention,
                            "NoncurrentVersionExpiration": {"NoncurrentDays": retention},
                            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                        }
                    ]
                },
            },
        },
        "FailureBucketPolicy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": {"Ref": "FailureBucket"},
                "PolicyDocument": failure_bucket_policy(bucket_arn, objects_arn, _role_arn(PRODUCER_ROLE_NAME)),
            },
        },
    }


def _alarm_actions() -> dict[str, Any]:
    """Where an alarm goes when it fires and when it clears: the AlarmTopicArn topic, where one is given."""
    topic = {"Fn::If": ["AlarmTopicOn", [{"Ref": "AlarmTopicArn"}], NO_VALUE]}
    return {"AlarmActions": topic, "OKActions": topic}


def _reported_failures(metric_id: str, table: Any) -> dict[str, Any]:
    """The producer's own BatchFailures metric of one audited table (Powertools: dimensions service and table)."""
    dimensions = [{"Name": "service", "Value": SERVICE}, {"Name": "table", "Value": table}]
    return {
        "Id": metric_id,
        "MetricStat": {
            "Metric": {"Namespace": NAMESPACE, "MetricName": "BatchFailures", "Dimensions": dimensions},
            "Period": ALARM_PERIOD_SECONDS,
            "Stat": "Sum",
        },
        "ReturnData": False,
    }


def _alarms() -> dict[str, Any]:
    """The shard is held (IteratorAge), and batches fail (function errors plus reported batch failures).

    A batch fails in one of two ways: the function raises (a misconfiguration: AWS/Lambda Errors), or
    it reports a partial failure (throttling, an outage: the function's own BatchFailures, which Errors
    never counts). So the second alarm adds both; neither alone sees every failed batch.
    """
    function = [{"Name": "FunctionName", "Value": {"Ref": "AuditProducer"}}]
    errors = {
        "Id": "errors",
        "MetricStat": {
            "Metric": {"Namespace": "AWS/Lambda", "MetricName": "Errors", "Dimensions": function},
            "Period": ALARM_PERIOD_SECONDS,
            "Stat": "Sum",
        },
        "ReturnData": False,
    }
    reported = [_reported_failures("reported0", {"Ref": "ConfigurationTable"})] + [
        {"Fn::If": [f"{slot}On", _reported_failures(f"reported{number}", {"Ref": slot}), NO_VALUE]}
        for number, slot in enumerate(_slots(), start=1)
    ]
    added = ["SUM([FILL(errors, 0), FILL(reported0, 0)"] + [
        {"Fn::If": [f"{slot}On", f", FILL(reported{number}, 0)", ""]} for number, slot in enumerate(_slots(), start=1)
    ]
    evaluation = {
        "Period": ALARM_PERIOD_SECONDS,
        "EvaluationPeriods": ALARM_EVALUATION_PERIODS,
        "DatapointsToAlarm": ALARM_DATAPOINTS,
    }
    return {
        "IteratorAgeAlarm": {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmDescription": "config-audit: the audit producer is behind its stream (a shard is held: "
                "batches keep failing, or the function cannot keep up); changes are not in the trail yet. "
                "See docs/operating.md, Never lose a change.",
                "Namespace": "AWS/Lambda",
                "MetricName": "IteratorAge",
                "Dimensions": function,
                "Statistic": "Maximum",
                **evaluation,
                "Threshold": {"Ref": "IteratorAgeAlarmMilliseconds"},
                "ComparisonOperator": "GreaterThanThreshold",
                "TreatMissingData": "notBreaching",  # no invocation, no record waiting
                **_alarm_actions(),
            },
        },
        "BatchFailuresAlarm": {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmDescription": "config-audit: batches of the audit producer fail (function errors and "
                "reported batch failures); Lambda retries them and holds the shard until the cause is fixed. "
                "See docs/operating.md, Never lose a change.",
                "Metrics": [
                    {
                        "Id": "failures",
                        "Expression": {"Fn::Join": ["", [*added, "])"]]},
                        "Label": "failed batches",
                        "ReturnData": True,
                    },
                    errors,
                    *reported,
                ],
                "EvaluationPeriods": ALARM_EVALUATION_PERIODS,
                "DatapointsToAlarm": ALARM_DATAPOINTS,
                "Threshold": {"Ref": "BatchFailuresAlarmThreshold"},
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "TreatMissingData": "notBreaching",
                **_alarm_actions(),
            },
        },
    }


def _alarm_parameters() -> dict[str, Any]:
    return {
        "FailureRecordRetentionDays": {
            "Type": "Number",
            "Default": str(FAILURE_RECORD_RETENTION_DAYS),
            "MinValue": 1,
            "Description": "Days the on-failure bucket keeps a batch Lambda gave up on; at least as long as the "
            "trail's digests are kept (DigestRetentionDays)",
        },
        "IteratorAgeAlarmMilliseconds": {
            "Type": "Number",
            "Default": str(ITERATOR_AGE_ALARM_MILLISECONDS),
            "MinValue": 1000,
            "Description": "Alarm when the producer is this far behind its stream (IteratorAge, Maximum)",
        },
        "BatchFailuresAlarmThreshold": {
            "Type": "Number",
            "Default": str(BATCH_FAILURES_ALARM_THRESHOLD),
            "MinValue": 1,
            "Description": f"Alarm when this many batches fail in a minute, {ALARM_DATAPOINTS} minutes "
            f"in {ALARM_EVALUATION_PERIODS}",
        },
        "AlarmTopicArn": {
            "Type": "String",
            "Default": "",
            "AllowedPattern": "^$|^arn:aws[A-Za-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$",
            "Description": "An SNS topic the alarms notify when they fire and clear; empty: none",
        },
    }


STREAM_ARN_PATTERN = "^$|^arn:aws[A-Za-z-]*:dynamodb:[a-z0-9-]+:[0-9]{12}:table/[A-Za-z0-9_.-]{3,255}/stream/.+$"


def _slots() -> list[str]:
    """The parameter names of the existing tables' slots: AuditedTable1, AuditedTable2, ..."""
    return [f"AuditedTable{number}" for number in range(1, AUDITED_TABLE_SLOTS + 1)]


def _slot_parameters(slot: str) -> dict[str, Any]:
    return {
        slot: {
            "Type": "String",
            "Default": "",
            "AllowedPattern": "^$|^[A-Za-z0-9_.-]{3,255}$",
            "Description": "The name of a table that exists already, audited beside Configuration into a trail "
            "of its own (its stream must carry NEW_AND_OLD_IMAGES); empty: none",
        },
        f"{slot}StreamArn": {
            "Type": "String",
            "Default": "",
            "AllowedPattern": STREAM_ARN_PATTERN,
            "Description": f"The stream ARN of {slot} (aws dynamodb describe-table --query Table.LatestStreamArn)",
        },
    }


def _both_given(slot: str) -> dict[str, Any]:
    """The condition that a slot is filled: its name and its stream ARN given."""
    return {"Fn::And": [{"Fn::Not": [{"Fn::Equals": [{"Ref": name}, ""]}]} for name in (f"{slot}StreamArn", slot)]}


def _slot_rule(slot: str) -> dict[str, Any]:
    """A slot's name and stream ARN are given together, or neither."""
    empty = [{"Fn::Equals": [{"Ref": name}, ""]} for name in (slot, f"{slot}StreamArn")]
    return {
        "Assertions": [
            {
                "Assert": {"Fn::Or": [{"Fn::And": empty}, {"Fn::And": [{"Fn::Not": [e]} for e in empty]}]},
                "AssertDescription": f"{slot} and {slot}StreamArn go together: the table's name and its stream ARN",
            }
        ]
    }


def _slot_resources(slot: str, failures: dict[str, Any]) -> dict[str, Any]:
    """An existing table's trail, protected as the Audit table, and the producer's mapping on its stream."""
    trail_name = f"${{AWS::StackName}}-${{{slot}}}-audit"
    trail = _table(audit_table("Audit"))
    trail["Condition"] = f"{slot}On"
    trail["Properties"]["TableName"] = {"Fn::Sub": trail_name}
    trail["Properties"]["ResourcePolicy"] = {
        "PolicyDocument": append_only_table_policy(
            _arn("dynamodb", f"table/{trail_name}"), _role_arn(PRODUCER_ROLE_NAME)
        )
    }
    return {
        f"{slot}Trail": trail,
        f"{slot}EventSourceMapping": {
            "Type": "AWS::Lambda::EventSourceMapping",
            "Condition": f"{slot}On",
            "Properties": {
                "FunctionName": {"Ref": "AuditProducer"},
                "EventSourceArn": {"Ref": f"{slot}StreamArn"},
                **_mapping_settings(),
                "DestinationConfig": {"OnFailure": {"Destination": failures}},
            },
        },
    }


def _audited_tables() -> dict[str, Any]:
    """AUDITED_TABLES: Configuration=Audit and every filled slot's pair; empty where no slot is, as ever."""
    pairs = [{"Fn::Sub": "${ConfigurationTable}=${AuditTable}"}] + [
        {"Fn::If": [f"{slot}On", {"Fn::Sub": f",${{{slot}}}=${{{slot}Trail}}"}, ""]} for slot in _slots()
    ]
    return {"Fn::If": ["AuditedTablesOn", {"Fn::Join": ["", pairs]}, ""]}


def merge_template() -> dict[str, Any]:
    # SAM names functions <stack>-<logical id>-<suffix>: their log groups, and no others
    log_groups = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/${AWS::StackName}-*"
    logs = {"Fn::Sub": log_groups}
    stream = {"Fn::GetAtt": ["ConfigurationTable", "StreamArn"]}
    audit = {"Fn::GetAtt": ["AuditTable", "Arn"]}
    queue = {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    failures = {"Fn::GetAtt": ["FailureBucket", "Arn"]}
    topic = {"Ref": "ChangeTopic"}
    producer = producer_statements(logs, stream, audit, None, queue)
    producer += failure_record_statements(failures, {"Fn::Sub": "${FailureBucket.Arn}/*"})
    publish = producer_statements(logs, stream, audit, topic, None)[-1]
    producer.append({"Fn::If": ["NotifyChangesOn", publish, {"Ref": "AWS::NoValue"}]})
    parameter = _arn("ssm", "parameter${RedactionKeyParameter}")
    kms_key = {"Ref": "RedactionKmsKeyArn"}
    read_key, decrypt_key = redaction_statements(parameter, kms_key, {"Fn::Sub": "ssm.${AWS::Region}.amazonaws.com"})
    producer.append({"Fn::If": ["RedactionOn", read_key, {"Ref": "AWS::NoValue"}]})
    producer.append({"Fn::If": ["CustomerManagedRedactionKey", decrypt_key, {"Ref": "AWS::NoValue"}]})
    producer += digest_statements({"Fn::Sub": "${DigestBucket.Arn}/*"})
    history = history_statements(
        logs, _indexes("AuditTable"), {"Fn::GetAtt": ["AuditTable", "Arn"]}, {"Fn::GetAtt": ["AuditActorsTable", "Arn"]}
    )
    # an existing table's stream and trail, granted exactly where its slot is filled
    for slot in _slots():
        trail_arn = {"Fn::GetAtt": [f"{slot}Trail", "Arn"]}
        read_stream, write_trail = producer_statements(logs, {"Ref": f"{slot}StreamArn"}, trail_arn)[1:3]
        read_history, read_entries = history_statements(logs, _indexes(f"{slot}Trail"), trail_arn)[1:3]
        for statements, statement, sid in (
            (producer, read_stream, f"Read{slot}Stream"),
            (producer, write_trail, f"Write{slot}Entries"),
            (history, read_history, f"Read{slot}History"),
            (history, read_entries, f"Read{slot}HistoryEntries"),
        ):
            statements.append({"Fn::If": [f"{slot}On", {**statement, "Sid": sid}, NO_VALUE]})
    audit_table_arn = _arn("dynamodb", f"table/{AUDIT_TABLE_NAME}")
    producer_role_arn = _role_arn(PRODUCER_ROLE_NAME)
    audit_resource = _table(audit_table("Audit"))
    audit_resource["Properties"]["TableName"] = {"Fn::Sub": AUDIT_TABLE_NAME}
    audit_resource["Properties"]["ResourcePolicy"] = {
        "PolicyDocument": append_only_table_policy(audit_table_arn, producer_role_arn)
    }
    producer_role = _role("AuditProducer", producer)
    producer_role["Properties"]["RoleName"] = {"Fn::Sub": PRODUCER_ROLE_NAME}
    actors_arn = _arn("dynamodb", f"table/{ACTORS_TABLE_NAME}")
    actors_resource = _table(actors_table("AuditActors"))
    actors_resource["Properties"]["TableName"] = {"Fn::Sub": ACTORS_TABLE_NAME}
    actors_resource["Properties"]["ResourcePolicy"] = {
        "PolicyDocument": append_only_table_policy(actors_arn, _role_arn(RECORDER_ROLE_NAME))
    }
    recorder_role = _role("ActorRecorder", recorder_statements(logs, {"Fn::GetAtt": ["AuditActorsTable", "Arn"]}))
    recorder_role["Properties"]["RoleName"] = {"Fn::Sub": RECORDER_ROLE_NAME}
    variables = {
        "CONFIGURATION_TABLE_NAME": {"Ref": "ConfigurationTable"},
        "AUDIT_TABLE_NAME": {"Ref": "AuditTable"},
        "AUDITED_TABLES": _audited_tables(),
        "ACTORS_TABLE_NAME": {"Ref": "AuditActorsTable"},
    }
    return {
        "Parameters": {
            "NotifyChanges": {
                "Type": "String",
                "AllowedValues": ["true", "false"],
                "Default": "false",
                "Description": "Publish every audit entry to an SNS topic the stack creates",
            },
            "RecordActors": {
                "Type": "String",
                "AllowedValues": ["true", "false"],
                "Default": "false",
                "Description": "Log the Configuration table's write calls with CloudTrail (data events: charged "
                "per event) so that the history names who made each change",
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
            "DigestRetentionDays": {
                "Type": "Number",
                "Default": DEFAULT_DIGEST_RETENTION_DAYS,
                "MinValue": 1,
                "MaxValue": MAX_DIGEST_RETENTION_DAYS,
                "Description": "Days each digest of the trail is kept from deletion and overwriting by anyone "
                "(S3 Object Lock, compliance mode; it cannot be shortened once written)",
            },
            **_alarm_parameters(),
            **{name: value for slot in _slots() for name, value in _slot_parameters(slot).items()},
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
            },
            **{f"{slot}WithItsStream": _slot_rule(slot) for slot in _slots()},
        },
        "Conditions": {
            "NotifyChangesOn": {"Fn::Equals": [{"Ref": "NotifyChanges"}, "true"]},
            "RecordActorsOn": {"Fn::Equals": [{"Ref": "RecordActors"}, "true"]},
            "RedactionOn": {"Fn::Not": [{"Fn::Equals": [{"Ref": "RedactAttributes"}, ""]}]},
            "CustomerManagedRedactionKey": {
                "Fn::And": [
                    {"Condition": "RedactionOn"},
                    {"Fn::Not": [{"Fn::Equals": [{"Ref": "RedactionKmsKeyArn"}, ""]}]},
                ]
            },
            # on the stream ARN and the name, which a rule pairs: the linter then knows both are set where used
            **{f"{slot}On": _both_given(slot) for slot in _slots()},
            "AuditedTablesOn": {"Fn::Or": [{"Condition": f"{slot}On"} for slot in _slots()]},
            "AlarmTopicOn": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]},
        },
        "Resources": {
            "ConfigurationTable": _table(configuration_table("Configuration")),
            "AuditTable": audit_resource,
            "AuditActorsTable": actors_resource,
            **_trail(),
            **_digest_bucket(),
            **_failure_bucket(),
            **_alarms(),
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
                            "FAILURE_BUCKET": {"Ref": "FailureBucket"},
                            "CHANGE_TOPIC_ARN": {"Fn::If": ["NotifyChangesOn", topic, ""]},
                            "REDACT_ATTRIBUTES": {"Ref": "RedactAttributes"},
                            "REDACTION_KEY_PARAMETER": {"Ref": "RedactionKeyParameter"},
                            "DIGEST_BUCKET": {"Ref": "DigestBucket"},
                        }
                    },
                    "Events": {
                        "AuditProducerDynamodbEventSource": {
                            "Type": "DynamoDB",
                            "Properties": {
                                "Stream": stream,
                                **_mapping_settings(),
                                "DestinationConfig": {"OnFailure": {"Destination": failures}},
                            },
                        }
                    },
                }
            },
            "AuditProducerRole": producer_role,
            "ActorRecorder": {"Properties": {"Environment": {"Variables": variables}}},
            "ActorRecorderRole": recorder_role,
            "APIHandler": {"Properties": {"Environment": {"Variables": variables}}},
            "ApiHandlerRole": _role("AuditHistory", history),
            **{name: value for slot in _slots() for name, value in _slot_resources(slot, failures).items()},
        },
        "Outputs": {
            "ConfigurationTableName": {"Value": {"Ref": "ConfigurationTable"}},
            "ConfigurationStreamArn": {"Value": stream},
            "AuditTableName": {"Value": {"Ref": "AuditTable"}},
            "DeadLetterQueueUrl": {"Value": {"Ref": "DeadLetterQueue"}},
            "FailureBucketName": {"Value": {"Ref": "FailureBucket"}},
            "AuditActorsTableName": {"Value": {"Ref": "AuditActorsTable"}},
            "DigestBucketName": {"Value": {"Ref": "DigestBucket"}},
            "TrailName": {"Condition": "RecordActorsOn", "Value": {"Ref": "ConfigurationWritesTrail"}},
            "ChangeTopicArn": {"Condition": "NotifyChangesOn", "Value": topic},
            **{f"{slot}TrailName": {"Condition": f"{slot}On", "Value": {"Ref": f"{slot}Trail"}} for slot in _slots()},
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
