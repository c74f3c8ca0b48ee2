"""Terraform beside `chalice package --pkg-format terraform`: the project's own resources.

    python -m infra.terraform          # writes infra/terraform/*.tf.json
    python -m infra.terraform --check  # fails if the committed files differ

`make terraform` copies them next to Chalice's chalice.tf.json in dist/terraform/:
- audit.tf.json: both tables (from infra/tables.py), the dead-letter queue, the on-failure bucket,
  the alarms, an optional topic, the digest bucket (Object Lock, compliance mode,
  var.digest_retention_days), and each function's least-privilege policy document (statements
  from infra/policy.py); for every table that exists already (var.audited_tables, name => stream
  ARN) a trail protected as Audit and the producer's event source mapping on its stream, with the
  same settings;
- chalice_override.tf.json: Terraform's override file for Chalice's resources: the event source
  mapping wired to the table's stream by reference, with partial batch responses, bisection, no
  retry or record age limit and the on-failure bucket; the functions' variables by reference; the
  role policies replaced by the documents above.
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
from infra.cloudformation import (
    ALARM_DATAPOINTS,
    ALARM_EVALUATION_PERIODS,
    ALARM_PERIOD_SECONDS,
    BATCH_FAILURES_ALARM_THRESHOLD,
    FAILURE_RECORD_RETENTION_DAYS,
    ITERATOR_AGE_ALARM_MILLISECONDS,
    MAXIMUM_RECORD_AGE_SECONDS,
    MAXIMUM_RETRY_ATTEMPTS,
)
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
OUT = ROOT / "infra" / "terraform"
MAPPING = "audit_producer-dynamodb-event-source"  # the name chalice package gives it

STREAM = "${aws_dynamodb_table.configuration.stream_arn}"
AUDIT_ARN = "${aws_dynamodb_table.audit.arn}"
TABLE_ARN = (
    "arn:${data.aws_partition.chalice.partition}:dynamodb:${data.aws_region.chalice.name}:"
    "${data.aws_caller_identity.chalice.account_id}:table/"
)


class Expression(str):
    """A Terraform expression that is a list already: a statement's resources, not one of them."""


# Tables that exist already (var.audited_tables, name => stream ARN), each with a trail of its own
STREAMS = Expression("${concat([aws_dynamodb_table.configuration.stream_arn], values(var.audited_tables))}")
TRAILS = Expression("${concat([aws_dynamodb_table.audit.arn], [for trail in aws_dynamodb_table.trail : trail.arn])}")
HISTORY_INDEXES = Expression(  # the history and time indexes of every trail
    "${flatten([for arn in concat([aws_dynamodb_table.audit.arn], "
    "[for trail in aws_dynamodb_table.trail : trail.arn]) : "
    f'["${{arn}}/index/{HISTORY_INDEX}", "${{arn}}/index/{TIME_INDEX}"]])}}'
)
AUDITED_TABLE_ARNS = Expression(
    "${concat([aws_dynamodb_table.configuration.arn], "
    f'[for name in keys(var.audited_tables) : "{TABLE_ARN}${{name}}"])}}'
)
# empty where no table that exists is given: the seed's stage, exactly as without the variable
AUDITED_TABLES = (
    '${length(var.audited_tables) == 0 ? "" : join(",", concat('
    '["${aws_dynamodb_table.configuration.name}=${aws_dynamodb_table.audit.name}"], '
    '[for name, trail in aws_dynamodb_table.trail : "${name}=${trail.name}"]))}'
)
ACTORS_ARN = "${aws_dynamodb_table.actors.arn}"
TRAIL = "${var.record_actors ? 1 : 0}"  # count: the trail and its bucket exist only where asked for
BUCKET_ARN = "${aws_s3_bucket.trail[0].arn}"
QUEUE_ARN = "${aws_sqs_queue.dead_letters.arn}"
DIGEST_BUCKET_ARN = "${aws_s3_bucket.digests.arn}"
DIGESTS = f"{DIGEST_BUCKET_ARN}/*"
FAILURE_BUCKET = "${aws_s3_bucket.failures.id}"
FAILURE_BUCKET_ARN = "${aws_s3_bucket.failures.arn}"
PRODUCER_FUNCTION = "${aws_lambda_function.audit_producer.function_name}"
ALARM_ACTIONS = '${var.alarm_topic_arn == "" ? [] : [var.alarm_topic_arn]}'


def logs(function: str) -> list[str]:
    """A function's own log group and its streams, by the name Chalice gave the function."""
    group = (
        "arn:${data.aws_partition.chalice.partition}:logs:${data.aws_region.chalice.name}:"
        "${data.aws_caller_identity.chalice.account_id}:log-group:/aws/lambda/"
        f"${{aws_lambda_function.{function}.function_name}}"
    )
    return [group, f"{group}:*"]


def _table(name: str, definition: dict[str, Any]) -> dict[str, Any]:
    table: dict[str, Any] = {
        "name": f"{definition['TableName']}-${{var.stage}}",
        "billing_mode": "PAY_PER_REQUEST",
        "hash_key": definition["KeySchema"][0]["AttributeName"],
        "attribute": [
            {"name": a["AttributeName"], "type": a["AttributeType"]} for a in definition["AttributeDefinitions"]
        ],
        "point_in_time_recovery": {"enabled": True},
        "deletion_protection_enabled": True,
        "lifecycle": {"prevent_destroy": True},  # an audit trail outlives the code that writes it
    }
    if "StreamSpecification" in definition:
        table["stream_enabled"] = True
        table["stream_view_type"] = definition["StreamSpecification"]["StreamViewType"]
    for index in definition.get("GlobalSecondaryIndexes", []):
        keys = {k["KeyType"]: k["AttributeName"] for k in index["KeySchema"]}
        projected = {"projection_type": index["Projection"]["ProjectionType"]}
        if "NonKeyAttributes" in index["Projection"]:
            projected["non_key_attributes"] = index["Projection"]["NonKeyAttributes"]
        table.setdefault("global_secondary_index", []).append(
            {"name": index["IndexName"], "hash_key": keys["HASH"], "range_key": keys["RANGE"], **projected}
        )
    return table


def _document(statements: list[dict[str, Any]]) -> dict[str, Any]:
    """IAM policy statements as an aws_iam_policy_document's blocks."""
    return {"statement": [_statement(statement) for statement in statements]}


def _statement(s: dict[str, Any]) -> dict[str, Any]:
    block: dict[str, Any] = {
        "sid": s["Sid"],
        "effect": s["Effect"],
        "actions": [s["Action"]] if isinstance(s["Action"], str) else s["Action"],
        "resources": s["Resource"] if isinstance(s["Resource"], list | Expression) else [s["Resource"]],
    }
    if s.get("Principal") == "*":
        block["principals"] = [{"type": "*", "identifiers": ["*"]}]
    for test, variables in s.get("Condition", {}).items():
        block["condition"] = [{"test": test, "variable": name, "values": [value]} for name, value in variables.items()]
    return block


def _optional(statement: dict[str, Any], when: str) -> dict[str, Any]:
    """A dynamic statement block, present only where ``when`` (a Terraform expression) holds."""
    return {"for_each": f"${{{when} ? [1] : []}}", "content": statement}


def _trail_bucket_policy() -> dict[str, Any]:
    """CloudTrail, for this trail's logs only, may write the bucket; nobody may reach it without TLS."""
    cloudtrail = [{"type": "Service", "identifiers": ["cloudtrail.amazonaws.com"]}]
    logs = f"{BUCKET_ARN}/AWSLogs/${{data.aws_caller_identity.chalice.account_id}}/*"
    return {
        "count": TRAIL,
        "statement": [
            {"sid": "CloudTrailChecksTheBucket", "effect": "Allow", "actions": ["s3:GetBucketAcl"],
             "resources": [BUCKET_ARN], "principals": cloudtrail},
            {"sid": "CloudTrailWritesItsLogs", "effect": "Allow", "actions": ["s3:PutObject"],
             "resources": [logs], "principals": cloudtrail},
            {"sid": "TlsOnly", "effect": "Deny", "actions": ["s3:*"], "resources": [BUCKET_ARN, f"{BUCKET_ARN}/*"],
             "principals": [{"type": "*", "identifiers": ["*"]}],
             "condition": [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}]},
        ],
    }  # fmt: skip


def _trail() -> dict[str, Any]:
    """A trail of the audited tables' write calls only, and its private, encrypted bucket."""
    bucket = "${aws_s3_bucket.trail[0].id}"
    return {
        "aws_s3_bucket": {"trail": {"count": TRAIL, "bucket_prefix": "config-audit-${var.stage}-trail-",
                                    "lifecycle": {"prevent_destroy": True}}},
        "aws_s3_bucket_public_access_block": {"trail": {
            "count": TRAIL, "bucket": bucket, "block_public_acls": True, "block_public_policy": True,
            "ignore_public_acls": True, "restrict_public_buckets": True}},
        "aws_s3_bucket_server_side_encryption_configuration": {"trail": {
            "count": TRAIL, "bucket": bucket,
            "rule": [{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}]}},
        "aws_s3_bucket_policy": {"trail": {"count": TRAIL, "bucket": bucket,
                                           "policy": "${data.aws_iam_policy_document.trail_bucket[0].json}"}},
        "aws_cloudtrail": {"configuration_writes": {
            "count": TRAIL,
            "name": "config-audit-${var.stage}-configuration-writes",
            "s3_bucket_name": bucket,
            "is_multi_region_trail": False,
            "include_global_service_events": False,
            "enable_log_file_validation": True,
            "depends_on": ["aws_s3_bucket_policy.trail"],
            "advanced_event_selector": [{
                "name": "Write calls on the audited tables, and nothing else",
                "field_selector": [
                    {"field": "eventCategory", "equals": ["Data"]},
                    {"field": "resources.type", "equals": ["AWS::DynamoDB::Table"]},
                    {"field": "resources.ARN", "equals": AUDITED_TABLE_ARNS},
                    {"field": "readOnly", "equals": ["false"]},
                    {"field": "eventName", "equals": sorted(WRITE_CALLS)},
                ],
            }],
        }},
    }  # fmt: skip


def _digest_bucket() -> dict[str, dict[str, Any]]:
    """The digest bucket (DIGEST_BUCKET): Object Lock in compliance mode, versioned, private, TLS only,
    written by the producer's role alone; resources by type, to merge with the others."""
    bucket = "${aws_s3_bucket.digests.id}"
    return {
        "aws_s3_bucket": {"digests": {"bucket_prefix": "config-audit-${var.stage}-digests-",
                                      "object_lock_enabled": True, "lifecycle": {"prevent_destroy": True}}},
        "aws_s3_bucket_versioning": {"digests": {"bucket": bucket,
                                                 "versioning_configuration": {"status": "Enabled"}}},
        "aws_s3_bucket_object_lock_configuration": {"digests": {
            "bucket": bucket,
            "rule": {"default_retention": {"mode": "COMPLIANCE", "days": "${var.digest_retention_days}"}},
            "depends_on": ["aws_s3_bucket_versioning.digests"]}},
        "aws_s3_bucket_public_access_block": {"digests": {
            "bucket": bucket, "block_public_acls": True, "block_public_policy": True,
            "ignore_public_acls": True, "restrict_public_buckets": True}},
        "aws_s3_bucket_server_side_encryption_configuration": {"digests": {
            "bucket": bucket, "rule": [{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}]}},
        "aws_s3_bucket_ownership_controls": {"digests": {
            "bucket": bucket, "rule": {"object_ownership": "BucketOwnerEnforced"}}},
        "aws_s3_bucket_policy": {"digests": {"bucket": bucket,
                                             "policy": "${data.aws_iam_policy_document.digest_bucket.json}"}},
    }  # fmt: skip


def _failure_bucket() -> dict[str, Any]:
    """The on-failure destination: each batch Lambda gives up on, whole, private, for `config-audit recover`."""
    retention = "${var.failure_record_retention_days}"
    return {
        "aws_s3_bucket": {"failures": {"bucket_prefix": "config-audit-${var.stage}-failures-",
                                       "lifecycle": {"prevent_destroy": True}}},  # its changes are in no trail yet
        "aws_s3_bucket_versioning": {"failures": {
            "bucket": FAILURE_BUCKET, "versioning_configuration": {"status": "Enabled"}}},
        "aws_s3_bucket_public_access_block": {"failures": {
            "bucket": FAILURE_BUCKET, "block_public_acls": True, "block_public_policy": True,
            "ignore_public_acls": True, "restrict_public_buckets": True}},
        "aws_s3_bucket_ownership_controls": {"failures": {
            "bucket": FAILURE_BUCKET, "rule": {"object_ownership": "BucketOwnerEnforced"}}},
        "aws_s3_bucket_server_side_encryption_configuration": {"failures": {
            "bucket": FAILURE_BUCKET,
            "rule": [{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}]}},
        "aws_s3_bucket_lifecycle_configuration": {"failures": {
            "bucket": FAILURE_BUCKET,
            "rule": [{"id": "keep-failure-records-as-long-as-the-digests", "status": "Enabled", "filter": {},
                      "expiration": {"days": retention},
                      "noncurrent_version_expiration": {"noncurrent_days": retention},
                      "abort_incomplete_multipart_upload": {"days_after_initiation": 7}}]}},
        "aws_s3_bucket_policy": {"failures": {
            "bucket": FAILURE_BUCKET, "policy": "${data.aws_iam_policy_document.failure_bucket.json}"}},
    }  # fmt: skip


def _reported_failures(metric_id: str, table: str) -> dict[str, Any]:
    """The producer's own BatchFailures metric of one audited table (Powertools: dimensions service and table)."""
    return {
        "id": metric_id,
        "metric": {
            "namespace": NAMESPACE,
            "metric_name": "BatchFailures",
            "dimensions": {"service": SERVICE, "table": table},
            "period": ALARM_PERIOD_SECONDS,
            "stat": "Sum",
        },
    }


def _alarms() -> dict[str, Any]:
    """The shard is held (IteratorAge); batches fail (function errors plus the batch failures the function
    reports, which Errors never counts): as in the stack (infra/cloudformation.py)."""
    function = {"FunctionName": PRODUCER_FUNCTION}
    evaluation = {
        "evaluation_periods": ALARM_EVALUATION_PERIODS,
        "datapoints_to_alarm": ALARM_DATAPOINTS,
        "treat_missing_data": "notBreaching",
        "alarm_actions": ALARM_ACTIONS,
        "ok_actions": ALARM_ACTIONS,
    }
    added = (
        '${join("", concat(["SUM([FILL(errors, 0), FILL(reported0, 0)"], '
        '[for i, name in keys(var.audited_tables) : ", FILL(reported${i + 1}, 0)"], ["])"]))}'
    )
    reported = _reported_failures("reported${metric_query.key + 1}", "${metric_query.value}")
    return {
        "iterator_age": {
            "alarm_name": "config-audit-${var.stage}-iterator-age",
            "alarm_description": "config-audit: the audit producer is behind its stream (a shard is held); "
            "changes are not in the trail yet. See docs/operating.md, Never lose a change.",
            "namespace": "AWS/Lambda",
            "metric_name": "IteratorAge",
            "dimensions": function,
            "statistic": "Maximum",
            "period": ALARM_PERIOD_SECONDS,
            "threshold": "${var.iterator_age_alarm_ms}",
            "comparison_operator": "GreaterThanThreshold",
            **evaluation,
        },
        "batch_failures": {
            "alarm_name": "config-audit-${var.stage}-batch-failures",
            "alarm_description": "config-audit: batches of the audit producer fail; Lambda retries them and holds "
            "the shard until the cause is fixed. See docs/operating.md, Never lose a change.",
            "threshold": "${var.batch_failures_alarm_threshold}",
            "comparison_operator": "GreaterThanOrEqualToThreshold",
            **evaluation,
            "metric_query": [
                {"id": "failures", "expression": added, "label": "failed batches", "return_data": True},
                {
                    "id": "errors",
                    "metric": {
                        "namespace": "AWS/Lambda",
                        "metric_name": "Errors",
                        "dimensions": function,
                        "period": ALARM_PERIOD_SECONDS,
                        "stat": "Sum",
                    },
                },
                _reported_failures("reported0", "${aws_dynamodb_table.configuration.name}"),
            ],
            # one more per table that exists already, by its name: the function's table dimension
            "dynamic": {"metric_query": {"for_each": "${keys(var.audited_tables)}", "content": reported}},
        },
    }


def _resources(*groups: dict[str, Any]) -> dict[str, Any]:
    """Terraform resources by type then name, from groups that may share a type (two buckets)."""
    merged: dict[str, Any] = {}
    for group in groups:
        for kind, named in group.items():
            merged.setdefault(kind, {}).update(named)
    return merged


def _mapping_settings() -> dict[str, Any]:
    """What every event source mapping of the producer sets beside its stream, function and batch."""
    return {
        "starting_position": "TRIM_HORIZON",
        "function_response_types": ["ReportBatchItemFailures"],
        "bisect_batch_on_function_error": True,
        "maximum_retry_attempts": MAXIMUM_RETRY_ATTEMPTS,
        "maximum_record_age_in_seconds": MAXIMUM_RECORD_AGE_SECONDS,
        "destination_config": {"on_failure": {"destination_arn": FAILURE_BUCKET_ARN}},
    }


def _audited_tables() -> dict[str, Any]:
    """Every table that exists already: a trail shaped and protected as Audit, append-only, and a mapping."""
    trail = _table("trail", audit_table("${each.key}-audit"))
    append_only = append_only_table_policy("${each.value.arn}", "${aws_iam_role.audit_producer_role.arn}")
    return {
        "trail": {"for_each": "${var.audited_tables}", **trail},
        "trail_policy": {
            "for_each": "${aws_dynamodb_table.trail}",
            "resource_arn": "${each.value.arn}",
            "policy": "${data.aws_iam_policy_document.trail_append_only[each.key].json}",
        },
        "trail_append_only": {"for_each": "${aws_dynamodb_table.trail}", **_document(append_only["Statement"])},
        "mapping": {
            "for_each": "${var.audited_tables}",
            "function_name": "${aws_lambda_function.audit_producer.arn}",
            "event_source_arn": "${each.value}",
            "batch_size": 100,
            "maximum_batching_window_in_seconds": 0,
            **_mapping_settings(),
        },
    }


def audit_tf() -> dict[str, Any]:
    audited = _audited_tables()
    producer = _document(
        producer_statements(logs("audit_producer"), STREAMS, TRAILS, None, QUEUE_ARN)
        + failure_record_statements(FAILURE_BUCKET_ARN, f"{FAILURE_BUCKET_ARN}/*")
        + digest_statements(DIGESTS)
    )
    [publish] = _document(
        producer_statements(logs("audit_producer"), STREAM, AUDIT_ARN, "${aws_sns_topic.changes[0].arn}", None)
    )["statement"][-1:]
    parameter = (
        "arn:${data.aws_partition.chalice.partition}:ssm:${data.aws_region.chalice.name}:"
        "${data.aws_caller_identity.chalice.account_id}:parameter${var.redaction_key_parameter}"
    )
    ssm_service = "ssm.${data.aws_region.chalice.name}.amazonaws.com"
    read_key, decrypt_key = (
        _statement(s) for s in redaction_statements(parameter, "${var.redaction_kms_key_arn}", ssm_service)
    )
    producer["dynamic"] = {
        "statement": [
            _optional(publish, "var.notify_changes"),
            _optional(read_key, 'var.redact_attributes != ""'),
            _optional(decrypt_key, 'var.redact_attributes != "" && var.redaction_kms_key_arn != ""'),
        ]
    }
    append_only = _document(append_only_table_policy(AUDIT_ARN, "${aws_iam_role.audit_producer_role.arn}")["Statement"])
    history = _document(history_statements(logs("api_handler"), HISTORY_INDEXES, TRAILS, ACTORS_ARN))
    recorder = _document(recorder_statements(logs("actor_recorder"), ACTORS_ARN))
    actors_append_only = _document(
        append_only_table_policy(ACTORS_ARN, "${aws_iam_role.actor_recorder_role.arn}")["Statement"]
    )
    return {
        "variable": {
            "stage": {"type": "string", "default": "dev"},
            "notify_changes": {"type": "bool", "default": False, "description": "publish every entry to SNS"},
            "redact_attributes": {
                "type": "string",
                "default": "",
                "description": "attribute names never stored in plain: comma-separated shell patterns, any case",
            },
            "redaction_key_parameter": {
                "type": "string",
                "default": "",
                "description": "SSM SecureString parameter (a path from /) holding the redaction HMAC key",
                "validation": {
                    "condition": '${var.redaction_key_parameter == "" || can(regex("^(/[A-Za-z0-9_.-]+)+$", '
                    "var.redaction_key_parameter))}",
                    "error_message": "redaction_key_parameter is a path from /, as /config-audit/prod/redaction-key",
                },
            },
            "redaction_kms_key_arn": {"type": "string", "default": "", "description": "that parameter's KMS key"},
            "digest_retention_days": {
                "type": "number",
                "default": DEFAULT_DIGEST_RETENTION_DAYS,
                "description": "days each digest of the trail is kept from deletion and overwriting by anyone "
                "(S3 Object Lock, compliance mode)",
                "validation": {
                    "condition": f"${{var.digest_retention_days >= 1 && var.digest_retention_days <= "
                    f"{MAX_DIGEST_RETENTION_DAYS} && floor(var.digest_retention_days) == var.digest_retention_days}}",
                    "error_message": f"digest_retention_days is whole days, 1 to {MAX_DIGEST_RETENTION_DAYS}",
                },
            },
            "record_actors": {
                "type": "bool",
                "default": False,
                "description": "a CloudTrail trail of the audited tables' write calls (data events are charged)",
            },
            "failure_record_retention_days": {
                "type": "number",
                "default": FAILURE_RECORD_RETENTION_DAYS,
                "description": "days the on-failure bucket keeps a batch Lambda gave up on; at least as long as "
                "the trail's digests are kept",
            },
            "iterator_age_alarm_ms": {
                "type": "number",
                "default": ITERATOR_AGE_ALARM_MILLISECONDS,
                "description": "alarm when the producer is this far behind its stream (IteratorAge, Maximum)",
            },
            "batch_failures_alarm_threshold": {
                "type": "number",
                "default": BATCH_FAILURES_ALARM_THRESHOLD,
                "description": f"alarm when this many batches fail in a minute, {ALARM_DATAPOINTS} minutes "
                f"in {ALARM_EVALUATION_PERIODS}",
            },
            "alarm_topic_arn": {
                "type": "string",
                "default": "",
                "description": "an SNS topic the alarms notify when they fire and clear; empty: none",
            },
            "audited_tables": {
                "type": "map(string)",
                "default": {},
                "description": "tables that exist already, audited beside Configuration, each into a trail of its "
                "own: name => stream ARN (a stream of NEW_AND_OLD_IMAGES)",
                "validation": {
                    # Chalice's output pins Terraform below 1.4: no startswith(), no strcontains()
                    "condition": "${alltrue([for name, arn in var.audited_tables : "
                    'substr(arn, 0, 4) == "arn:" && length(split(":table/${name}/stream/", arn)) == 2])}',
                    "error_message": "audited_tables maps a table's name to its stream's ARN, "
                    "arn:aws:dynamodb:REGION:ACCOUNT:table/NAME/stream/LABEL",
                },
            },
        },
        "resource": _resources(
            {
                "aws_dynamodb_table": {
                    "configuration": _table("configuration", configuration_table("Configuration")),
                    "audit": _table("audit", audit_table("Audit")),
                    "actors": _table("actors", actors_table("AuditActors")),
                    "trail": audited["trail"],
                },
                "aws_lambda_event_source_mapping": {"audited": audited["mapping"]},
                "aws_sqs_queue": {
                    "dead_letters": {
                        "name": "config-audit-${var.stage}-dead-letters",
                        "message_retention_seconds": 1209600,
                    }
                },
                "aws_sns_topic": {
                    "changes": {"count": "${var.notify_changes ? 1 : 0}", "name": "config-audit-${var.stage}-changes"}
                },
                "aws_dynamodb_resource_policy": {
                    "audit": {
                        "resource_arn": AUDIT_ARN,
                        "policy": "${data.aws_iam_policy_document.audit_append_only.json}",
                    },
                    "actors": {
                        "resource_arn": ACTORS_ARN,
                        "policy": "${data.aws_iam_policy_document.actors_append_only.json}",
                    },
                    "trail": audited["trail_policy"],
                },
            },
            _trail(),
            _digest_bucket(),
            _failure_bucket(),
            {"aws_cloudwatch_metric_alarm": _alarms()},
        ),
        "data": {
            "aws_iam_policy_document": {
                "audit_producer": producer,
                "api_handler": history,
                "audit_append_only": append_only,
                "actor_recorder": recorder,
                "actors_append_only": actors_append_only,
                "trail_append_only": audited["trail_append_only"],
                "trail_bucket": _trail_bucket_policy(),
                "digest_bucket": _document(
                    digest_bucket_policy(DIGEST_BUCKET_ARN, DIGESTS, "${aws_iam_role.audit_producer_role.arn}")[
                        "Statement"
                    ]
                ),
                "failure_bucket": _document(
                    failure_bucket_policy(
                        FAILURE_BUCKET_ARN, f"{FAILURE_BUCKET_ARN}/*", "${aws_iam_role.audit_producer_role.arn}"
                    )["Statement"]
                ),
            },
        },
        "output": {
            "configuration_table": {"value": "${aws_dynamodb_table.configuration.name}"},
            "configuration_stream_arn": {"value": STREAM},
            "audit_table": {"value": "${aws_dynamodb_table.audit.name}"},
            "actors_table": {"value": "${aws_dynamodb_table.actors.name}"},
            "audited_trails": {"value": "${ {for name, trail in aws_dynamodb_table.trail : name => trail.name} }"},
            "dead_letter_queue_url": {"value": "${aws_sqs_queue.dead_letters.url}"},
            "digest_bucket": {"value": "${aws_s3_bucket.digests.id}"},
            "failure_bucket": {"value": FAILURE_BUCKET},
        },
    }


def override_tf() -> dict[str, Any]:
    names = {
        "CONFIGURATION_TABLE_NAME": "${aws_dynamodb_table.configuration.name}",
        "AUDIT_TABLE_NAME": "${aws_dynamodb_table.audit.name}",
        "AUDITED_TABLES": AUDITED_TABLES,
        "ACTORS_TABLE_NAME": "${aws_dynamodb_table.actors.name}",
    }
    return {
        # Chalice pins the AWS provider below 5; the Audit table's resource policy needs 5.43 or
        # newer (aws_dynamodb_resource_policy). An override file's requirement replaces Chalice's.
        "terraform": {"required_providers": {"aws": {"source": "hashicorp/aws", "version": ">= 5.43.0, < 6.0.0"}}},
        "resource": {
            "aws_lambda_event_source_mapping": {MAPPING: {"event_source_arn": STREAM, **_mapping_settings()}},
            "aws_lambda_function": {
                "audit_producer": {
                    "environment": {
                        "variables": {
                            **names,
                            "CONFIGURATION_STREAM_ARN": STREAM,
                            "REPORT_BATCH_ITEM_FAILURES": "true",
                            "DEAD_LETTER_QUEUE_URL": "${aws_sqs_queue.dead_letters.url}",
                            "FAILURE_BUCKET": FAILURE_BUCKET,
                            "CHANGE_TOPIC_ARN": '${var.notify_changes ? aws_sns_topic.changes[0].arn : ""}',
                            "REDACT_ATTRIBUTES": "${var.redact_attributes}",
                            "REDACTION_KEY_PARAMETER": "${var.redaction_key_parameter}",
                            "DIGEST_BUCKET": "${aws_s3_bucket.digests.id}",
                        }
                    }
                },
                "api_handler": {"environment": {"variables": names}},
                "actor_recorder": {"environment": {"variables": names}},
            },
            "aws_iam_role_policy": {
                "audit_producer_role": {"policy": "${data.aws_iam_policy_document.audit_producer.json}"},
                "api_handler_role": {"policy": "${data.aws_iam_policy_document.api_handler.json}"},
                "actor_recorder_role": {"policy": "${data.aws_iam_policy_document.actor_recorder.json}"},
            },
        },
    }


FILES = {"audit.tf.json": audit_tf, "chalice_override.tf.json": override_tf}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    stale = []
    for name, build in FILES.items():
        text = json.dumps(build(), indent=2) + "\n"
        path = OUT / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.write_text(text)
    if stale:
        print("out of date (run python -m infra.terraform): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
