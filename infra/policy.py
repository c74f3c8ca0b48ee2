"""Each function's least-privilege IAM policy for a stage, derived from the stage's variables.

``python -m infra.policy --stage dev`` writes ``.chalice/policy-dev-<function>.json`` for each of
the app's functions (Chalice gives each its own role when ``autogen_policy`` is off, and reads its
file from ``stages.<stage>.lambda_functions.<function>.iam_policy_file``); ``--check`` fails when a
committed file differs or a function has no file of its own, so no policy can drift or widen.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from chalicelib.audit.repository import HISTORY_INDEX, TIME_INDEX
from chalicelib.producers import FIRST_PRODUCER, Producer, producers
from config_audit.stage import stage_environment
from infra.redaction_key import parameter_arn

ROOT = Path(__file__).resolve().parent.parent
APP_NAME = "config-audit"


def arn_parts(stream_arn: str) -> tuple[str, str, str]:
    """(partition, region, account) of a DynamoDB stream ARN."""
    parts = stream_arn.split(":")
    if len(parts) < 6 or parts[2] != "dynamodb" or "/stream/" not in parts[5]:
        raise ValueError(f"CONFIGURATION_STREAM_ARN is not a DynamoDB stream ARN: {stream_arn!r}")
    return parts[1], parts[3], parts[4]


def queue_arn(queue_url: str) -> str:
    """The ARN of an SQS queue from its URL (https://sqs.<region>.<domain>/<account>/<name>)."""
    host, account, name = queue_url.split("://", 1)[-1].split("/")[:3]
    region = host.split(".")[1]
    return f"arn:aws:sqs:{region}:{account}:{name}"


Arn = Any  # a string, or a CloudFormation / Terraform reference to one


def producer_statements(
    logs: Arn, stream: Arn, audit_table: Arn, topic: Arn | None = None, queue: Arn | None = None
) -> list[dict[str, Any]]:
    """What audit_producer calls: its logs, the stream, BatchWriteItem, and the optional topic and queue."""
    statements: list[dict[str, Any]] = [
        _allow("WriteOwnLogs", ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], logs),
        _allow(
            "ReadConfigurationStream",
            ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"],
            stream,
        ),
        _allow("WriteAuditEntries", ["dynamodb:BatchWriteItem"], audit_table),
    ]
    if topic is not None:
        statements.append(_allow("PublishChanges", ["sns:Publish"], topic))  # PublishBatch is sns:Publish
    if queue is not None:
        statements.append(_allow("SendPoisonRecords", ["sqs:SendMessage"], queue))
    return statements


def failure_record_statements(bucket: Arn, objects: Arn) -> list[dict[str, Any]]:
    """What Lambda needs of the producer's role to write a batch it gives up on into the on-failure
    bucket: PutObject on its objects and ListBucket on it (Lambda's docs for an S3 destination)."""
    return [
        _allow("WriteFailureRecords", ["s3:PutObject"], objects),
        _allow("ListFailureRecords", ["s3:ListBucket"], bucket),
    ]


def failure_bucket_policy(bucket: Arn, objects: Arn, writer_role: Arn) -> dict[str, Any]:
    """The on-failure bucket's own policy: nothing reaches it without TLS, and no principal but the
    producer's role (on whose behalf Lambda writes a failure record) may put an object in it.

    Reading and tagging (how `config-audit recover` marks a record done) stay with IAM, so an
    operator granted them is not locked out.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": [bucket, objects],
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            {"Sid": "OnlyTheProducerWritesRecords", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
             "Resource": objects, "Condition": {"ArnNotEquals": {"aws:PrincipalArn": writer_role}}},
        ],
    }  # fmt: skip


def redaction_statements(parameter: Arn, kms_key: Arn | None, ssm_service: Arn) -> list[dict[str, Any]]:
    """Read the one redaction key parameter; decrypt with its customer managed KMS key, through SSM only.

    The AWS managed key aws/ssm needs no statement here: its key policy lets every principal of
    the account decrypt through SSM, which is why a customer managed key is recommended.
    """
    statements = [_allow("ReadRedactionKey", ["ssm:GetParameter"], parameter)]
    if kms_key is not None:
        decrypt = _allow("DecryptRedactionKey", ["kms:Decrypt"], kms_key)
        decrypt["Condition"] = {"StringEquals": {"kms:ViaService": ssm_service}}  # ssm.<region>.amazonaws.com
        statements.append(decrypt)
    return statements


def history_statements(logs: Arn, indexes: Arn, trails: Arn, actors_table: Arn | None = None) -> list[dict[str, Any]]:
    """What the history routes call: their logs, Query on the history and time indexes (of every
    trail), BatchGetItem of the entries a time window names (GET /changes), Query on AuditActors."""
    statements = [
        _allow("WriteOwnLogs", ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], logs),
        _allow("ReadAuditHistory", ["dynamodb:Query"], indexes),
        _allow("ReadAuditEntries", ["dynamodb:BatchGetItem"], trails),
    ]
    if actors_table is not None:
        statements.append(_allow("ReadActors", ["dynamodb:Query"], actors_table))
    return statements


def recorder_statements(logs: Arn, actors_table: Arn | None) -> list[dict[str, Any]]:
    """What actor_recorder calls: its logs and BatchWriteItem on AuditActors (when the stage has one)."""
    statements = [_allow("WriteOwnLogs", ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], logs)]
    if actors_table is not None:
        statements.append(_allow("WriteActors", ["dynamodb:BatchWriteItem"], actors_table))
    return statements


# An entry, once written, is never changed or removed; new ones come from one function only.
CHANGE_ACTIONS = ["dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:PartiQLUpdate", "dynamodb:PartiQLDelete"]
WRITE_ACTIONS = ["dynamodb:PutItem", "dynamodb:BatchWriteItem", "dynamodb:PartiQLInsert"]


def append_only_table_policy(table: Arn, writer_role: Arn) -> dict[str, Any]:
    """The resource-based policy of an append-only table (Audit): no principal may change or
    delete an item, and no principal but the owning function's role may write one.

    Explicit denies win over any allow, an administrator's included; lifting them takes
    dynamodb:PutResourcePolicy or DeleteResourcePolicy on the table, which CloudTrail records.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "EntriesAreNeverChanged", "Effect": "Deny", "Principal": "*", "Action": CHANGE_ACTIONS,
             "Resource": table},
            {"Sid": "OnlyTheOwnerWrites", "Effect": "Deny", "Principal": "*", "Action": WRITE_ACTIONS,
             "Resource": table, "Condition": {"ArnNotEquals": {"aws:PrincipalArn": writer_role}}},
        ],
    }  # fmt: skip


def digest_statements(objects: Arn) -> list[dict[str, Any]]:
    """What the producer calls on the digest bucket (DIGEST_BUCKET): PutObject of its objects, nothing else."""
    return [_allow("WriteDigests", ["s3:PutObject"], objects)]


# A digest, once written, is kept: nobody deletes one or loosens the lock that keeps it.
DIGEST_LOCK_ACTIONS = [
    "s3:DeleteObject*",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutObjectRetention",
    "s3:BypassGovernanceRetention",
    "s3:PutObjectLegalHold",
]


def digest_bucket_policy(bucket: Arn, objects: Arn, writer_role: Arn) -> dict[str, Any]:
    """The digest bucket's policy: no principal may delete a digest or change the lock, no
    principal but the producer's role may write one, and nothing reaches it without TLS.

    Object Lock in compliance mode keeps every version for its retention whatever a policy says;
    these denies also keep anyone from trying, and from writing a digest of their own.
    """
    everyone = "*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "DigestsAreKept", "Effect": "Deny", "Principal": everyone, "Action": DIGEST_LOCK_ACTIONS,
             "Resource": [bucket, objects]},
            {"Sid": "OnlyTheProducerWrites", "Effect": "Deny", "Principal": everyone, "Action": ["s3:PutObject"],
             "Resource": objects, "Condition": {"ArnNotEquals": {"aws:PrincipalArn": writer_role}}},
            {"Sid": "TlsOnly", "Effect": "Deny", "Principal": everyone, "Action": ["s3:*"],
             "Resource": [bucket, objects], "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        ],
    }  # fmt: skip


def _allow(sid: str, actions: list[str], resource: Arn) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resource}


# The app's functions as Chalice names them; the REST API's function is always "api_handler".
# A stage auditing several tables has one more audit_producer function per table (infra/producers.py).
FUNCTIONS = (FIRST_PRODUCER, "api_handler", "actor_recorder")

# Lambda function and IAM role names: config-audit-<stage>-<function>
MAX_NAME_LENGTH = 64


def stage_functions(env: dict[str, str]) -> tuple[str, ...]:
    """Every function a stage deploys: the app's three, and one audit_producer more per audited table."""
    return (*FUNCTIONS, *(p.function for p in producers(env)[1:]))


def policies_for(stage: str, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Each function's policy document: exactly what it calls, on exactly the stage's ARNs."""
    found = _producers_with_streams(env)
    partition, region, account = arn_parts(found[0].stream_arn or "")
    check_function_names(stage, tuple(p.function for p in found))

    def table(name: str) -> str:
        return f"arn:{partition}:dynamodb:{region}:{account}:table/{name}"

    actors = table(env["ACTORS_TABLE_NAME"]) if env.get("ACTORS_TABLE_NAME") else None

    def logs(function: str) -> list[str]:  # its own log group, and the streams in it
        group = f"arn:{partition}:logs:{region}:{account}:log-group:/aws/lambda/{function_name(stage, function)}"
        return [group, f"{group}:*"]

    queue = queue_arn(env["DEAD_LETTER_QUEUE_URL"]) if env.get("DEAD_LETTER_QUEUE_URL") else None
    redaction: list[dict[str, Any]] = []
    # only the producers digest secrets: a reader holding the key could guess low-entropy ones offline
    if env.get("REDACT_ATTRIBUTES", "").strip() and env.get("REDACTION_KEY_PARAMETER", "").strip():
        parameter = parameter_arn(partition, region, account, env["REDACTION_KEY_PARAMETER"].strip())
        kms_key = env.get("REDACTION_KMS_KEY_ARN") or None
        redaction = redaction_statements(parameter, kms_key, f"ssm.{region}.amazonaws.com")
    # each producer reads its own table's stream and writes that table's trail, nothing of another's
    digests = (
        digest_statements(f"arn:{partition}:s3:::{env['DIGEST_BUCKET'].strip()}/*")
        if env.get("DIGEST_BUCKET", "").strip()
        else []
    )
    statements = {
        p.function: producer_statements(
            logs(p.function), p.stream_arn, table(p.trail), env.get("CHANGE_TOPIC_ARN") or None, queue
        )
        + redaction
        + digests
        for p in found
    }
    indexes = [f"{table(p.trail)}/index/{index}" for p in found for index in (HISTORY_INDEX, TIME_INDEX)]
    trails = [table(p.trail) for p in found]
    statements["api_handler"] = history_statements(
        logs("api_handler"), indexes, trails[0] if len(trails) == 1 else trails, actors
    )
    statements["actor_recorder"] = recorder_statements(logs("actor_recorder"), actors)
    return {
        function: {"Version": "2012-10-17", "Statement": statements[function]}
        for function in (*FUNCTIONS, *(p.function for p in found[1:]))
    }


def check_function_names(stage: str, functions: tuple[str, ...]) -> None:
    """ValueError where a function's deployed name (and its role's) would be too long for Lambda and IAM."""
    for function in functions:
        name = function_name(stage, function)
        if len(name) > MAX_NAME_LENGTH:
            raise ValueError(
                f"function {name!r} would be {len(name)} characters, over Lambda's {MAX_NAME_LENGTH}: "
                "choose a shorter stage name"
            )


def _producers_with_streams(env: dict[str, str]) -> tuple[Producer, ...]:
    """The stage's producers, each with its stream; ValueError naming the variable that lacks one."""
    found = producers(env)
    if not found[0].stream_arn:
        raise ValueError("CONFIGURATION_STREAM_ARN not set in the stage's environment_variables")
    lacking = [p.source for p in found if not p.stream_arn]
    if lacking:
        raise ValueError(
            f"AUDITED_STREAM_ARNS has no stream of table {lacking[0]!r} in the stage's environment_variables "
            "(make provision records it)"
        )
    return found


def function_name(stage: str, function: str) -> str:
    """The Lambda function `chalice deploy` makes: the REST API's carries no suffix of its own."""
    return f"{APP_NAME}-{stage}" if function == "api_handler" else f"{APP_NAME}-{stage}-{function}"


def policy_file(stage: str, function: str) -> str:
    """The name, under .chalice/, of one function's policy file for a stage."""
    return f"policy-{stage}-{function}.json"


def assign_policy_files(stage: str, stage_config: dict[str, Any], functions: tuple[str, ...] = FUNCTIONS) -> None:
    """Point each function of a stage's config at its own policy file, and drop a shared one and
    those of producers the stage no longer deploys."""
    # a stage-wide iam_policy_file is what Chalice falls back to for a function without its own
    stage_config.pop("iam_policy_file", None)
    configured = stage_config.setdefault("lambda_functions", {})
    for gone in [f for f in configured if f.startswith(f"{FIRST_PRODUCER}-") and f not in functions]:
        configured[gone].pop("iam_policy_file", None)
        if not configured[gone]:
            del configured[gone]
    for function in functions:
        configured.setdefault(function, {})["iam_policy_file"] = policy_file(stage, function)


def unassigned_functions(stage: str, config: dict[str, Any], functions: tuple[str, ...] = FUNCTIONS) -> list[str]:
    """The functions whose policy file in a Chalice config is not their own for the stage."""
    stage_config = config.get("stages", {}).get(stage, {})
    return [
        function
        for function in functions
        if stage_config.get("lambda_functions", {}).get(function, {}).get("iam_policy_file")
        != policy_file(stage, function)
    ]


def write_policies(stage: str, env: dict[str, str], directory: Path) -> list[Path]:
    """Write each function's policy file of a stage into ``directory`` (a project's .chalice), and
    remove those of producers the stage no longer deploys."""
    written = []
    for function, policy in policies_for(stage, env).items():
        path = directory / policy_file(stage, function)
        path.write_text(render(policy))
        written.append(path)
    for stale in set(directory.glob(policy_file(stage, f"{FIRST_PRODUCER}-*"))) - set(written):
        stale.unlink()
    return written


def render(policy: dict[str, Any]) -> str:
    """The policy as it is committed: stable JSON with a final newline."""
    return json.dumps(policy, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--check", action="store_true", help="fail if a committed file differs")
    args = parser.parse_args(argv)
    directory = ROOT / ".chalice"
    try:
        env = stage_environment(args.stage, ROOT)
        policies = policies_for(args.stage, env)
    except (KeyError, ValueError) as error:
        print(f"no policy for stage {args.stage!r}: {error.args[0]}", file=sys.stderr)
        return 1
    if not args.check:
        for path in write_policies(args.stage, env, directory):
            print(f"wrote {path}")
        return 0
    config = json.loads((directory / "config.json").read_text())
    problems = [
        f"{directory / 'config.json'}: {function} of stage {args.stage!r} does not have "
        f"iam_policy_file {policy_file(args.stage, function)!r} of its own"
        for function in unassigned_functions(args.stage, config, tuple(policies))
    ]
    for function, policy in policies.items():
        path = directory / policy_file(args.stage, function)
        if not path.exists() or path.read_text() != render(policy):
            problems.append(f"{path} is not the policy derived for {function} of stage {args.stage!r}")
    if problems:
        print("; ".join(problems) + " (run python -m infra.policy --stage " + args.stage + ")", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
