"""`make provision STAGE=dev`: create the stage's tables where missing and record its streams' ARNs.

The stage audits CONFIGURATION_TABLE_NAME into AUDIT_TABLE_NAME, or every SOURCE=TRAIL pair of
AUDITED_TABLES. The first audited table is created where missing; every other must exist already
(provisioning never creates someone's configuration table for them). Every trail, and AuditActors,
is created where missing. The first table, the trails and AuditActors get deletion protection and
point-in-time recovery; each trail a resource-based policy that denies changing or deleting entries
to everyone, and writing them to all but the role of the one function auditing its table. The
redaction key is created in SSM where the stage redacts and it is missing.

Idempotent: tables that exist are kept; the stage's CONFIGURATION_STREAM_ARN in
.chalice/config.json is set to the first table's current stream, and with AUDITED_TABLES,
AUDITED_STREAM_ARNS to every audited table's, in order; each function is pointed at its own policy
file, and the files are derived again. An existing audited table is refused (exit status 1, one
line naming the table and the fix, nothing created or written) unless its stream carries
NEW_AND_OLD_IMAGES; --enable-stream turns the stream on where it has none. Talks to whatever
endpoint boto3 is pointed at (AWS_ENDPOINT_URL, region and credentials from the usual places),
which is how the deploy rehearsal tests it against moto.

Once `chalice deploy` has subscribed the stage's functions, running it again also sets every one of
their event source mappings never to give up on a record the stream holds (MaximumRetryAttempts
and MaximumRecordAgeInSeconds -1, as the stack and Terraform set them): Chalice passes neither, so
Lambda's defaults (-1) apply, and this keeps them so should anyone change them.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.producers import Producer, producers
from infra.cloudformation import MAXIMUM_RECORD_AGE_SECONDS, MAXIMUM_RETRY_ATTEMPTS
from infra.policy import (
    APP_NAME,
    append_only_table_policy,
    arn_parts,
    assign_policy_files,
    check_function_names,
    function_name,
    stage_functions,
    write_policies,
)
from infra.redaction_key import ensure_redaction_key
from infra.tables import UnusableTable, prepare_tables, protect_tables

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_STAGE = "dev"


# what every subscription of a producer holds: never give up on a record the stream still holds
NEVER_GIVE_UP = {
    "MaximumRetryAttempts": MAXIMUM_RETRY_ATTEMPTS,
    "MaximumRecordAgeInSeconds": MAXIMUM_RECORD_AGE_SECONDS,
}


class NotProvisioned(Exception):
    """The stage's settings name no tables to provision; the message says which are missing."""


@dataclass(frozen=True)
class Provisioned:
    """What provisioning found and did: each audited stream's ARN; the deployed mappings it had to set."""

    stream_arns: list[str]
    mappings_set: list[str]  # "<function> on <stream ARN>", for each mapping that could give up before


def never_give_up(lambda_client: Any, stage: str, found: tuple[Producer, ...], stream_arns: list[str]) -> list[str]:
    """Set every deployed mapping of the stage's producers (one per audited stream) never to give up on a
    record the stream holds; those it changed. None is deployed before `chalice deploy`: nothing to do."""
    changed = []
    for producer, stream_arn in zip(found, stream_arns, strict=True):
        function = function_name(stage, producer.function)
        pages = lambda_client.get_paginator("list_event_source_mappings").paginate(EventSourceArn=stream_arn)
        for mapping in (m for page in pages for m in page["EventSourceMappings"]):
            if not mapping["FunctionArn"].endswith(f":function:{function}"):
                continue  # another reader of the stream is none of this stage's business
            if all(mapping.get(name) == value for name, value in NEVER_GIVE_UP.items()):
                continue
            lambda_client.update_event_source_mapping(UUID=mapping["UUID"], **NEVER_GIVE_UP)
            changed.append(f"{function} on {stream_arn}")
    return changed


def provision(stage: str, project: Path = ROOT, enable_stream: bool = False) -> Provisioned:
    """Create the tables of ``stage`` (a new stage starts from dev's settings), and set its deployed
    mappings never to give up; each audited stream's ARN and the mappings set."""
    config_path = project / ".chalice" / "config.json"
    config = json.loads(config_path.read_text())
    stages = config.setdefault("stages", {})
    if stage not in stages:
        if TEMPLATE_STAGE not in stages:
            raise NotProvisioned(f"{config_path} has no stage {stage!r}, nor {TEMPLATE_STAGE!r} to start it from")
        stages[stage] = json.loads(json.dumps(stages[TEMPLATE_STAGE]))
    variables = stages[stage].setdefault("environment_variables", {})
    try:
        found = producers(variables)
    except ValueError as error:
        raise NotProvisioned(f"{error} in {config_path}") from None
    try:
        check_function_names(stage, stage_functions(variables))
    except ValueError as error:
        raise NotProvisioned(str(error)) from None
    client = boto3.client("dynamodb")
    actors = variables.get("ACTORS_TABLE_NAME")
    arns = prepare_tables(client, [(p.source, p.trail) for p in found], actors, enable_stream=enable_stream)
    partition, region, account = arn_parts(arns[0])

    # `chalice deploy` gives each function its own role, <app>-<stage>-<function> (the rehearsal checks it)
    def role(function: str) -> str:
        return f"arn:{partition}:iam::{account}:role/{APP_NAME}-{stage}-{function}"

    def table(name: str) -> str:
        return f"arn:{partition}:dynamodb:{region}:{account}:table/{name}"

    # each trail is written by the one function that audits its table
    append_only = {p.trail: append_only_table_policy(table(p.trail), role(p.function)) for p in found}
    if actors:
        append_only[actors] = append_only_table_policy(table(actors), role("actor_recorder"))
    # the first audited table is the stage's own (created here where missing); another's is left as it is
    protect_tables(client, [found[0].source, *append_only], append_only)
    if variables.get("REDACT_ATTRIBUTES") and variables.get("REDACTION_KEY_PARAMETER"):
        ensure_redaction_key(
            boto3.client("ssm"), variables["REDACTION_KEY_PARAMETER"], variables.get("REDACTION_KMS_KEY_ARN") or None
        )
    variables["CONFIGURATION_STREAM_ARN"] = arns[0]
    if variables.get("AUDITED_TABLES", "").strip():
        variables["AUDITED_STREAM_ARNS"] = ",".join(arns)
    else:
        variables.pop("AUDITED_STREAM_ARNS", None)
    assign_policy_files(stage, stages[stage], stage_functions(variables))
    write_policies(stage, {**config.get("environment_variables", {}), **variables}, project / ".chalice")
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    return Provisioned(arns, never_give_up(boto3.client("lambda"), stage, found, arns))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--project", type=Path, default=ROOT, help="the Chalice project (default: this one)")
    parser.add_argument(
        "--enable-stream",
        action="store_true",
        help="turn on the stream (NEW_AND_OLD_IMAGES) of an existing audited table that has none",
    )
    args = parser.parse_args(argv)
    try:
        done = provision(args.stage, args.project, args.enable_stream)
    except (UnusableTable, NotProvisioned) as error:
        print(f"stage {args.stage!r} not provisioned: {error}", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as error:
        print(f"provisioning stage {args.stage!r} failed: {error}", file=sys.stderr)
        return 1
    arns = done.stream_arns
    print(f"stage {args.stage}: tables ready; CONFIGURATION_STREAM_ARN = {arns[0]}")
    if len(arns) > 1:
        print(f"stage {args.stage}: AUDITED_STREAM_ARNS = {','.join(arns)}")
    for mapping in done.mappings_set:
        print(f"stage {args.stage}: the mapping of {mapping} now never gives up (MaximumRetryAttempts -1, "
              "MaximumRecordAgeInSeconds -1)")  # fmt: skip
    print(f"now: chalice deploy --stage {args.stage}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
