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
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.producers import producers
from infra.policy import (
    APP_NAME,
    append_only_table_policy,
    arn_parts,
    assign_policy_files,
    check_function_names,
    stage_functions,
    write_policies,
)
from infra.redaction_key import ensure_redaction_key
from infra.tables import UnusableTable, prepare_tables, protect_tables

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_STAGE = "dev"


class NotProvisioned(Exception):
    """The stage's settings name no tables to provision; the message says which are missing."""


def provision(stage: str, project: Path = ROOT, enable_stream: bool = False) -> list[str]:
    """Create the tables of ``stage`` (a new stage starts from dev's settings); return each audited stream's ARN."""
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
    return arns


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
        arns = provision(args.stage, args.project, args.enable_stream)
    except (UnusableTable, NotProvisioned) as error:
        print(f"stage {args.stage!r} not provisioned: {error}", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as error:
        print(f"provisioning stage {args.stage!r} failed: {error}", file=sys.stderr)
        return 1
    print(f"stage {args.stage}: tables ready; CONFIGURATION_STREAM_ARN = {arns[0]}")
    if len(arns) > 1:
        print(f"stage {args.stage}: AUDITED_STREAM_ARNS = {','.join(arns)}")
    print(f"now: chalice deploy --stage {args.stage}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
