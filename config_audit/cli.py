"""config-audit: an operator's view of the audit trail, and a rollback that is itself audited.

    config-audit history KEY                  every change of KEY, oldest first, with who made it
    config-audit at KEY TIME                  the item KEY held at TIME, replayed from its history
    config-audit diff KEY FROM TO             what changed in KEY between two times
    config-audit rollback KEY --to TIME       write KEY back to what it held at TIME (asks first)
    config-audit put KEY VALUE [--set N=V]    create or replace a setting (for trying it out)
    config-audit delete KEY

Against AWS with the default credentials and the tables of ``--stage`` in .chalice/config.json,
or against the local stack (``--local``: the one `make run` started, or ``--endpoint URL``);
these options go before or after the command.
Times are ISO 8601 with a zone: 2024-09-11T09:03:00Z, 2024-09-11T09:03:00.250+02:00.
A rollback writes with your own credentials, so CloudTrail names you, and only if the item is
still what its history says it is now; otherwise it refuses and says why.
Stored text (keys, values, times, ARNs) is printed escaped as JSON escapes it: it never reaches
the terminal as a control character.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import decimal
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

import boto3
from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
)
from botocore.exceptions import ConnectionError as CannotConnect  # not the builtin of that name

from chalicelib.actor_repository import DynamoDBActorRepository
from chalicelib.audit_repository import DynamoDBAuditRepository
from chalicelib.aws_calls import CallFailed, ConfigurationError
from chalicelib.changes import KEY_ATTRIBUTE, change_kind
from chalicelib.history import with_actors
from chalicelib.images import AttributeValue, deserialize_image, same_value
from chalicelib.redaction import PREFIX as REDACTED
from chalicelib.replay import Item, replay, whole_history
from infra.policy import stage_environment
from local.connection import ENDPOINT_FILE, REGION, client_arguments, environment

ROOT = Path(__file__).resolve().parent.parent


class Refused(Exception):
    """What the operator asked cannot be done; the message says why. Exit status 1."""


class Incomplete(Exception):
    """Written, but the table is not exactly what was asked; the message says how. Exit status 1."""


# -- reading the history ----------------------------------------------------------------------


class Trail:
    """The audit trail of one stage: its tables, read and written with one set of credentials."""

    def __init__(self, variables: dict[str, str], session: dict[str, Any]) -> None:
        self.variables = variables
        self.dynamodb = boto3.client("dynamodb", **session)
        self.audit = DynamoDBAuditRepository(self.dynamodb, variables["AUDIT_TABLE_NAME"])
        actors = variables.get("ACTORS_TABLE_NAME")
        self.actors = DynamoDBActorRepository(self.dynamodb, actors) if actors else None
        self.table = variables["CONFIGURATION_TABLE_NAME"]
        self.actor_attribute = variables.get("ACTOR_ATTRIBUTE", "modifiedBy") or None

    def entries(self, key: str) -> list[dict[str, Any]]:
        """Every entry of ``key``, newest first, with its actor, in attribute-value form."""
        return with_actors(whole_history(self.audit, key), self.actors)

    def known_entries(self, key: str) -> list[dict[str, Any]]:
        entries = self.entries(key)
        if not entries:
            raise Refused(f"no history for {key!r}: no change of it was ever audited")
        return entries

    def current(self, key: str) -> Item | None:
        response = self.dynamodb.get_item(TableName=self.table, Key={KEY_ATTRIBUTE: {"S": key}}, ConsistentRead=True)
        item: Item | None = response.get("Item")
        return item


def state_at(entries: Sequence[dict[str, Any]], key: str, time: str | None) -> Item | None:
    return replay(entries, until=time).get(key)


# -- rendering: stored text never reaches the terminal as a control character -----------------


def _json_escape(character: str) -> str:
    code = ord(character)
    if code > 0xFFFF:  # JSON spells a character beyond the BMP as its UTF-16 surrogate pair
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every character a terminal would not print as itself JSON-escaped (\\uXXXX)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _json_escape(c) for c in text)


def escaped(text: str) -> str:
    """Stored text as it stands inside a JSON string: quotes, backslashes and controls escaped."""
    return printable(json.dumps(text, ensure_ascii=False)[1:-1])


def show(value: Any) -> str:
    """A plain value as JSON, with no control character in it (JSON's escapes, and \\uXXXX)."""

    def default(o: Any) -> Any:
        if isinstance(o, Decimal):
            return int(o) if o == o.to_integral_value() else float(o)
        if isinstance(o, set):
            return sorted(o, key=str)
        return str(o)

    # outside strings json.dumps writes printable ASCII only, so escaping the whole text keeps it JSON
    return printable(json.dumps(value, default=default, sort_keys=True, ensure_ascii=False))


def who(entry: dict[str, Any]) -> str:
    if "actor" in entry:
        actor = entry["actor"]
        return f"{escaped(str(actor['arn']))} ({escaped(str(actor['source']))})"
    if "actorCandidates" in entry:
        return "one of " + ", ".join(escaped(str(candidate["arn"])) for candidate in entry["actorCandidates"])
    return "-"


def render_table(entries: Sequence[dict[str, Any]]) -> str:
    """Plain-value entries, oldest first, as a table a person reads: time, change, old -> new, who."""
    rows = [("time", "key", "change", "who", "old -> new")]
    for entry in entries:
        kind = change_kind(entry).value
        change = f"{kind} {escaped(str(entry['updatedAttribute']))}" if "updatedAttribute" in entry else kind
        old = show(entry["oldValue"]) if "oldValue" in entry else "-"
        new = show(entry["newValue"]) if "newValue" in entry else "-"
        time, key = escaped(str(entry["modificationTime"])), escaped(str(entry["itemKey"]))
        rows.append((time, key, change, who(entry), f"{old} -> {new}"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)) + "  " + row[4]
             for row in rows]  # fmt: skip
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def differences(before: Item | None, after: Item | None) -> list[str]:
    """Lines that say how ``after`` differs from ``before`` (attribute-value items)."""
    if before is None and after is None:
        return []
    if before is None:
        return [f"+ created: {show(deserialize_image(after or {}))}"]
    if after is None:
        return [f"- deleted: {show(deserialize_image(before))}"]
    lines = []
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        if old is not None and new is not None and same_value(old, new):
            continue
        if old is None:
            lines.append(f"+ {escaped(name)}: {show(_plain(new))}")
        elif new is None:
            lines.append(f"- {escaped(name)}: {show(_plain(old))}")
        else:
            lines.append(f"~ {escaped(name)}: {show(_plain(old))} -> {show(_plain(new))}")
    return lines


def _plain(value: Any) -> Any:
    return deserialize_image({"v": value})["v"]


# -- times ------------------------------------------------------------------------------------


def parse_time(text: str, now: dt.datetime | None = None) -> str:
    """An ISO 8601 time with a zone -> the entries' ``YYYY-MM-DDTHH:MM:SS.mmmZ``; not in the future."""
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise Refused(f"time {text!r} is not ISO 8601, such as 2024-09-11T09:03:00Z") from None
    if moment.tzinfo is None:
        raise Refused(f"time {text!r} has no zone: add Z for UTC, or an offset such as +02:00")
    try:
        moment = moment.astimezone(dt.UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is in year 0 in UTC, 9999-12-31T23:00-05:00 in 10000
        raise Refused(f"time {text!r} is outside the times the history holds (years 0001 to 9999 in UTC)") from None
    if moment > (now or dt.datetime.now(dt.UTC)):
        raise Refused(f"time {text!r} is in the future")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# -- rollback ---------------------------------------------------------------------------------

AttributePath = tuple[str | int, ...]  # map member names and list indices, from the top-level attribute down


def plan_rollback(trail: Trail, key: str, time: str) -> tuple[Item | None, Item | None]:
    """(the item now, the item to write back; None deletes it), or Refused saying why not.

    A redacted digest is never part of the item to write back, at any depth: where the history
    says the secret is unchanged since ``time``, the table's own value at that path is kept;
    otherwise the rollback is refused.
    """
    entries = trail.known_entries(key)
    recorded_now, target = state_at(entries, key, None), state_at(entries, key, time)
    current = trail.current(key)
    ignored = {trail.actor_attribute} if trail.actor_attribute else set()
    stale = _changed(recorded_now, current, ignored)
    if stale or (recorded_now is None) != (current is None):
        differing = ", ".join(repr(name) for name in stale) or "existence"
        raise Refused(
            f"{key!r} is not what its history says it is now (differs in: {differing}); "
            "a change may not have reached the audit trail yet, or was made around it: nothing written"
        )
    if target is None:
        return current, None
    restored = target
    for path in [path for name, value in target.items() for path in _digest_paths(value, (name,))]:
        digest, recorded, kept = _at(target, path), _at(recorded_now, path), _at(current, path)
        if recorded is None or kept is None or digest is None or not same_value(recorded, digest):
            raise Refused(
                f"'{_spelled(path)}' held a secret at that time, redacted in the history, and the table no "
                "longer holds that secret: it cannot be restored; nothing written"
            )
        restored = _replaced(restored, path, kept)  # unchanged since TIME: the table's own value
    return current, restored


def _is_digest(value: AttributeValue) -> bool:
    return isinstance(value.get("S"), str) and value["S"].startswith(REDACTED)


def _digest_paths(value: AttributeValue, path: AttributePath) -> Iterator[AttributePath]:
    """Where a redacted digest stands in ``value``: the value itself, or inside its maps and lists."""
    if _is_digest(value):
        yield path
    elif isinstance(value.get("M"), dict):
        for name, member in value["M"].items():
            yield from _digest_paths(member, (*path, name))
    elif isinstance(value.get("L"), list):
        for index, element in enumerate(value["L"]):
            yield from _digest_paths(element, (*path, index))


def _at(item: Item | None, path: AttributePath) -> AttributeValue | None:
    """The value at ``path`` in ``item``, or None where the item or a step of the path is missing."""
    value: AttributeValue | None = {"M": item} if item is not None else None
    for step in path:
        if value is None:
            return None
        if isinstance(step, str):
            members = value.get("M")
            value = members.get(step) if isinstance(members, dict) else None
        else:
            elements = value.get("L")
            value = elements[step] if isinstance(elements, list) and step < len(elements) else None
    return value


def _replaced(item: Item, path: AttributePath, new: AttributeValue) -> Item:
    """A copy of ``item`` with the value at ``path`` (which exists) replaced by ``new``."""

    def replace(value: AttributeValue, steps: AttributePath) -> AttributeValue:
        if not steps:
            return new
        step, rest = steps[0], steps[1:]
        if isinstance(step, str):
            return {"M": {**value["M"], step: replace(value["M"][step], rest)}}
        elements = list(value["L"])
        elements[step] = replace(elements[step], rest)
        return {"L": elements}

    replaced: Item = replace({"M": item}, path)["M"]
    return replaced


_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def _spelled(path: AttributePath) -> str:
    """An attribute path as an operator reads it: config.password, servers[0].password, a["b.c"]."""
    spelled = ""
    for step in path:
        if isinstance(step, int):
            spelled += f"[{step}]"
        elif _PLAIN_NAME.fullmatch(step):
            spelled += f".{step}" if spelled else step
        else:
            spelled += f'["{escaped(step)}"]'
    return spelled


def _agrees(recorded: AttributeValue, actual: AttributeValue) -> bool:
    """Whether the table's value is what the history records; a digest stands for any value."""
    if _is_digest(recorded):
        return True
    if isinstance(recorded.get("M"), dict) and isinstance(actual.get("M"), dict):
        members, held = recorded["M"], actual["M"]
        return members.keys() == held.keys() and all(_agrees(members[n], held[n]) for n in members)
    if isinstance(recorded.get("L"), list) and isinstance(actual.get("L"), list):
        elements, held_elements = recorded["L"], actual["L"]
        return len(elements) == len(held_elements) and all(
            _agrees(r, a) for r, a in zip(elements, held_elements, strict=True)
        )
    return same_value(recorded, actual)


def _changed(recorded: Item | None, actual: Item | None, ignored: set[str]) -> list[str]:
    recorded, actual = recorded or {}, actual or {}
    names = sorted((recorded.keys() | actual.keys()) - ignored)
    return [n for n in names if not (n in recorded and n in actual and _agrees(recorded[n], actual[n]))]


class _Expression:
    """Placeholders of one DynamoDB expression: ``#nN`` for names, ``:vN`` for values."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, AttributeValue] = {}

    def name(self, name: str) -> str:
        for placeholder, known in self.names.items():
            if known == name:
                return placeholder
        placeholder = f"#n{len(self.names)}"
        self.names[placeholder] = name
        return placeholder

    def value(self, value: AttributeValue) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = value
        return placeholder

    def parameters(self) -> dict[str, Any]:
        parameters: dict[str, Any] = {"ExpressionAttributeNames": self.names}
        if self.values:
            parameters["ExpressionAttributeValues"] = self.values
        return parameters


def write_back(trail: Trail, key: str, current: Item | None, target: Item | None, operator: str | None) -> str:
    """Write ``target`` (None: delete) only if the item is still ``current``; say what was done.

    An update sets and removes only what differs, under a condition that every attribute read is
    unchanged and every attribute it adds is still absent: an attribute another writer adds
    meanwhile survives. The old item comes back (ALL_OLD), so such a write is reported: Incomplete.
    A change of what it read makes it refuse with nothing written: Refused.
    """
    table_key = {KEY_ATTRIBUTE: {"S": key}}
    item = dict(target) if target is not None else None
    if item is not None and trail.actor_attribute and operator:
        item[trail.actor_attribute] = {"S": operator}  # the rollback declares who made it
    expression = _Expression()
    if current is None:
        condition = f"attribute_not_exists({expression.name(KEY_ATTRIBUTE)})"
    else:
        condition = " AND ".join(
            f"{expression.name(name)} = {expression.value(value)}" for name, value in sorted(current.items())
        )
    try:
        if item is None:
            response = trail.dynamodb.delete_item(
                TableName=trail.table, Key=table_key, ConditionExpression=condition, ReturnValues="ALL_OLD",
                **expression.parameters(),
            )  # fmt: skip
            added = _added(current, response.get("Attributes"))
            if added:
                raise Incomplete(
                    f"deleted {key!r}, but a write in between added {added}, which the deletion removed "
                    "with the item (the deletion's audit entry holds its value)"
                )
            return f"deleted {key!r}: it did not exist at that time"
        if current is None:
            trail.dynamodb.put_item(
                TableName=trail.table, Item=item, ConditionExpression=condition, **expression.parameters()
            )
            return f"rolled {key!r} back"
        updates = _update_expression(expression, current, item)
        if not updates:  # only the stamp differed, and it already names this operator
            return f"{key!r} already holds that: nothing written"
        unread = [f"attribute_not_exists({expression.name(name)})" for name in item if name not in current]
        response = trail.dynamodb.update_item(
            TableName=trail.table, Key=table_key, UpdateExpression=updates, ReturnValues="ALL_OLD",
            ConditionExpression=" AND ".join([condition, *unread]), **expression.parameters(),
        )  # fmt: skip
        added = _added(current, response.get("Attributes"))
        if added:
            raise Incomplete(
                f"rolled {key!r} back, but a write in between added {added}, which is kept: "
                f"{key!r} is not exactly what it held at that time"
            )
        return f"rolled {key!r} back"
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            raise Refused(f"{key!r} changed while rolling back: nothing written") from error
        raise


def _update_expression(expression: _Expression, current: Item, item: Item) -> str:
    """SET what ``item`` holds differently from ``current``, REMOVE what it no longer holds ("": nothing)."""
    sets = [
        f"{expression.name(name)} = {expression.value(value)}"
        for name, value in sorted(item.items())
        if name != KEY_ATTRIBUTE and not (name in current and same_value(current[name], value))
    ]
    removes = [expression.name(name) for name in sorted(current) if name not in item]
    clauses = [f"SET {', '.join(sets)}"] if sets else []
    if removes:
        clauses.append(f"REMOVE {', '.join(removes)}")
    return " ".join(clauses)


def _added(read: Item | None, old: Item | None) -> str:
    """The attributes the item held when written that were not there when read, quoted and listed."""
    return ", ".join(repr(name) for name in sorted((old or {}).keys() - (read or {}).keys()))


# -- the command line -------------------------------------------------------------------------


def _no_constant(text: str) -> NoReturn:
    raise ValueError(f"{text} is no number DynamoDB holds")


def parse_value(text: str) -> Any:
    """A JSON value (numbers exact), or else the text itself as a string."""
    try:
        return json.loads(text, parse_float=Decimal, parse_int=Decimal, parse_constant=_no_constant)
    except ValueError:
        return text


def checked_key(key: str) -> str:
    """The KEY argument, refused when empty (the table's key cannot be empty)."""
    if not key:
        raise Refused("KEY is empty: name a configuration key")
    return key


def new_item(args: argparse.Namespace) -> Item:
    """The item ``put`` writes, from KEY, VALUE and each ``--set NAME=VALUE``; Refused when malformed."""
    item: dict[str, Any] = {KEY_ATTRIBUTE: args.key, "value": parse_value(args.value)}
    for assignment in args.set:
        name, equals, value = assignment.partition("=")
        if not equals:
            raise Refused(f"--set {assignment!r} has no '=': write --set NAME=VALUE")
        if not name:
            raise Refused(f"--set {assignment!r} has no attribute name before '='")
        if name == KEY_ATTRIBUTE:
            raise Refused(f"--set cannot change {KEY_ATTRIBUTE!r}, the item's key: give it as KEY")
        if name in item:
            raise Refused(f"attribute {name!r} is given twice")
        item[name] = parse_value(value)
    return {name: _serialized(name, value) for name, value in item.items()}


def _serialized(name: str, value: Any) -> AttributeValue:
    try:
        serialized: AttributeValue = TypeSerializer().serialize(value)
    except (TypeError, ValueError, decimal.DecimalException):  # boto3 traps what DynamoDB would round
        raise Refused(
            f"attribute {name!r} holds a number DynamoDB cannot store exactly "
            "(at most 38 significant digits, between 1E-130 and 1E+126)"
        ) from None
    return serialized


def stage_variables(stage: str) -> dict[str, str]:
    """The stage's environment variables, as Chalice gives them to its functions."""
    try:
        return stage_environment(stage)
    except KeyError:
        raise Refused(f"stage {stage!r} is not in .chalice/config.json") from None


def connection(args: argparse.Namespace) -> dict[str, Any]:
    """boto3 client arguments: AWS with the default credentials, or the local stack's moto server."""
    endpoint = args.endpoint
    if args.local and not endpoint:
        if not ENDPOINT_FILE.exists():
            raise Refused("no local stack is running: start `make run`, or give --endpoint")
        endpoint = ENDPOINT_FILE.read_text().strip()
    return client_arguments(endpoint) if endpoint else {}


@contextlib.contextmanager
def _function_logs_on_stderr() -> Iterator[None]:
    """The function's log lines are for CloudWatch: here only warnings and errors, and on stderr."""
    from chalicelib.observability import logger

    handler, level = logger.registered_handler, logger.log_level
    if not isinstance(handler, logging.StreamHandler):  # not the stdout handler Powertools sets up
        yield
        return
    stream = handler.setStream(sys.stderr)
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
        if stream is not None:
            handler.setStream(stream)


def play_cloudtrail(client: Any, session: dict[str, Any], stage: str) -> None:
    """On the local stack, each write of this CLI reaches actor_recorder as CloudTrail would deliver it."""
    os.environ.update(environment(session["endpoint_url"]))
    from chalice.test import Client

    from app import app
    from local.cloudtrail import CloudTrailPlayer, identity_of

    recorder = Client(app, stage_name=stage, project_dir=str(ROOT))

    def deliver(event: dict[str, Any]) -> Any:  # EventBridge's part: the event reaches actor_recorder
        with _function_logs_on_stderr():  # an operator's stdout holds only the answer
            return recorder.lambda_.invoke("actor_recorder", event)

    CloudTrailPlayer(deliver, identity_of(boto3.client("sts", **session)), REGION).attach(client)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr like every other failure."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {printable(message)} (see {self.prog} --help)\n")


def _connection_options(suppress: bool) -> _Parser:
    """--stage, --local and --endpoint. After the command they default to nothing, so that they
    never overwrite what was given before it."""
    options = _Parser(add_help=False)

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    stage = "the stage in .chalice/config.json whose tables to use"
    options.add_argument("--stage", default=default("dev"), help=stage)
    options.add_argument("--local", action="store_true", default=default(False), help="the stack `make run` started")
    endpoint = "a moto server's URL (implies the local stack's fake credentials)"
    options.add_argument("--endpoint", default=default(None), help=endpoint)
    return options


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="config-audit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_connection_options(suppress=False)],
    )
    after = [_connection_options(suppress=True)]
    commands = p.add_subparsers(dest="command", required=True)
    commands.add_parser("history", parents=after, help="every change of a key, with who made it").add_argument("key")
    at = commands.add_parser("at", parents=after, help="what a key held at a time")
    at.add_argument("key")
    at.add_argument("time")
    diff = commands.add_parser("diff", parents=after, help="what changed between two times")
    diff.add_argument("key")
    diff.add_argument("start", metavar="FROM")
    diff.add_argument("end", metavar="TO")
    rollback = commands.add_parser("rollback", parents=after, help="write a key back to what it held at a time")
    rollback.add_argument("key")
    rollback.add_argument("--to", required=True, dest="time")
    rollback.add_argument("--yes", action="store_true", help="do not ask")
    put = commands.add_parser("put", parents=after, help="create or replace a setting")
    put.add_argument("key")
    put.add_argument("value")
    put.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="another attribute")
    commands.add_parser("delete", parents=after, help="delete a setting").add_argument("key")
    return p


def _confirmed(ask: Callable[[str], str], question: str) -> bool:
    try:
        return ask(question).strip().lower() in ("y", "yes")
    except EOFError:  # no terminal to answer (a pipe, a job): not confirmed
        return False


def run(args: argparse.Namespace, ask: Callable[[str], str] = input) -> str:
    key = checked_key(args.key)
    item = new_item(args) if args.command == "put" else None  # checked before anything is written
    session = connection(args)
    trail = Trail(stage_variables(args.stage), session)
    if "endpoint_url" in session and args.command in ("rollback", "put", "delete"):
        play_cloudtrail(trail.dynamodb, session, args.stage)
    if args.command == "history":
        entries = [deserialize_image(entry) for entry in reversed(trail.known_entries(key))]
        return render_table(entries)
    if args.command == "at":
        time = parse_time(args.time)
        held = state_at(trail.known_entries(key), key, time)
        return show(deserialize_image(held)) if held is not None else f"{key!r} did not exist at {time}"
    if args.command == "diff":
        start, end = parse_time(args.start), parse_time(args.end)
        if start > end:  # both in the entries' fixed-width UTC form, so text order is time order
            raise Refused(f"FROM {start} is after TO {end}: give the earlier time first")
        entries = trail.known_entries(key)
        lines = differences(state_at(entries, key, start), state_at(entries, key, end))
        return "\n".join(lines) if lines else f"{key!r} was the same at {start} and {end}"
    if args.command == "rollback":
        time = parse_time(args.time)
        current, target = plan_rollback(trail, key, time)
        lines = differences(current, target)
        if not lines:
            return f"{key!r} already holds what it held at {time}: nothing to do"
        print("\n".join(lines))
        if not args.yes and not _confirmed(ask, f"roll {key!r} back to {time}? [y/N] "):
            raise Refused("not confirmed: nothing written")
        operator = boto3.client("sts", **session).get_caller_identity()["Arn"]
        return write_back(trail, key, current, target, operator)
    if args.command == "put":
        trail.dynamodb.put_item(TableName=trail.table, Item=item)
        return f"put {key!r}"
    trail.dynamodb.delete_item(TableName=trail.table, Key={KEY_ATTRIBUTE: {"S": key}})
    return f"deleted {key!r}"


def _cause(error: BaseException) -> BaseException:
    """The botocore error behind a repository's CallFailed (it keeps it as its cause)."""
    while isinstance(error, CallFailed) and error.__cause__ is not None:
        error = error.__cause__
    return error


def failure(error: Exception, args: argparse.Namespace) -> str:
    """What went wrong calling AWS (or the local stack), as one line an operator can act on."""
    cause = _cause(error)
    if isinstance(cause, CannotConnect):  # refused, timed out, or closed, before any answer
        if args.endpoint:
            return f"nothing answers at {args.endpoint}: is the moto server running there?"
        if args.local:
            return (
                f"the local stack in {ENDPOINT_FILE} does not answer (`make run` stopped without removing it?): "
                "start `make run`"
            )
        return f"cannot reach AWS: {cause}"
    if isinstance(cause, NoCredentialsError):
        return "no AWS credentials found: configure them (aws configure, AWS_PROFILE), or use --local"
    if isinstance(cause, NoRegionError):
        return "no AWS region: set AWS_REGION or a region in ~/.aws/config, or use --local"
    if isinstance(cause, ClientError):
        details = cause.response.get("Error", {})
        return f"AWS said: {details.get('Code', 'error')}: {details.get('Message', cause)}"
    return f"AWS said: {cause}"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        print(run(args))
    except (Refused, Incomplete) as refused:
        message = str(refused)
    except ConfigurationError as error:  # the stage names a table that is missing or out of reach
        message = str(error)
    except (CallFailed, ClientError, BotoCoreError) as error:
        message = failure(error, args)
    except KeyboardInterrupt:
        message = "interrupted: nothing more written"
    else:
        return 0
    # one line, whatever the message quotes: no newline or control character reaches the terminal
    print(f"config-audit: {printable(message)}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
