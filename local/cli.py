"""A small command line for the local stack: put or delete a setting, print a key's history.

    python -m local.cli put CACHE_TTL_SEC 3600 [--set description="cache lifetime"]
    python -m local.cli delete CACHE_TTL_SEC
    python -m local.cli history CACHE_TTL_SEC
    python -m local.cli at CACHE_TTL_SEC 2024-09-11T09:03:00.000Z

Values are read as JSON where they parse (3600 is a number, true a boolean, {"a": 1} a map) and
as text otherwise. The endpoint is the running `make run`'s, or --endpoint.
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from typing import Any

import boto3

from chalicelib.audit_repository import DynamoDBAuditRepository
from chalicelib.images import deserialize_image
from chalicelib.replay import setting_at
from local.run import ENDPOINT_FILE
from local.stack import FAKE_CREDENTIALS, REGION, stage_variables
from local.trail import render_table, show


def parse_value(text: str) -> Any:
    try:
        return json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except json.JSONDecodeError:
        return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", help="moto endpoint (default: the one `make run` wrote)")
    parser.add_argument("--stage", default="dev")
    commands = parser.add_subparsers(dest="command", required=True)
    put = commands.add_parser("put", help="create or replace a setting")
    put.add_argument("key")
    put.add_argument("value")
    put.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="another attribute")
    commands.add_parser("delete", help="delete a setting").add_argument("key")
    commands.add_parser("history", help="print a key's audit trail").add_argument("key")
    at = commands.add_parser("at", help="what a setting held at a time, replayed from its history")
    at.add_argument("key")
    at.add_argument("time", help="YYYY-MM-DDTHH:MM:SS.mmmZ (UTC)")
    args = parser.parse_args(argv)

    endpoint = args.endpoint or (ENDPOINT_FILE.read_text().strip() if ENDPOINT_FILE.exists() else None)
    if not endpoint:
        parser.error("no local stack is running (start `make run`) and no --endpoint was given")
    variables = stage_variables(args.stage)
    connection = {
        "endpoint_url": endpoint,
        "region_name": REGION,
        "aws_access_key_id": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }
    resource = boto3.resource("dynamodb", **connection)
    if args.command == "put":
        item = {"key": args.key, "value": parse_value(args.value)}
        for assignment in args.set:
            name, _, value = assignment.partition("=")
            item[name] = parse_value(value)
        resource.Table(variables["CONFIGURATION_TABLE_NAME"]).put_item(Item=item)
    elif args.command == "delete":
        resource.Table(variables["CONFIGURATION_TABLE_NAME"]).delete_item(Key={"key": args.key})
    elif args.command == "at":
        client = boto3.client("dynamodb", **connection)
        held = setting_at(DynamoDBAuditRepository(client, variables["AUDIT_TABLE_NAME"]), args.key, args.time)
        print(show(deserialize_image(held)) if held is not None else f"{args.key!r} did not exist at {args.time}")
    else:
        # the same reader GET /audit/{key} uses: the index, exact order, page by page
        # a plain client: a resource's client would re-serialize the attribute values it is given
        client = boto3.client("dynamodb", **connection)
        repository = DynamoDBAuditRepository(client, variables["AUDIT_TABLE_NAME"])
        entries: list[dict[str, Any]] = []
        token = None
        while True:
            page = repository.history(args.key, 1000, token)
            entries.extend(deserialize_image(entry) for entry in page.entries)
            if (token := page.next) is None:
                break
        entries.reverse()  # oldest first reads as a story
        print(render_table(entries) if entries else f"no history for {args.key!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
