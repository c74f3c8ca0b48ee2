"""config-audit: an operator's view of the audit trail, and a rollback that is itself audited.

    config-audit history KEY                  every change of KEY, oldest first, with who made it
    config-audit changes --since 1h           every change of every key in a window, newest first, with who
    config-audit at KEY TIME                  the item KEY held at TIME, replayed from its history
    config-audit diff KEY FROM TO             what changed in KEY between two times
    config-audit rollback KEY --to TIME       write KEY back to what it held at TIME (asks first)
    config-audit put KEY VALUE [--set N=V]    create or replace a setting (for trying it out)
    config-audit delete KEY
    config-audit verify [--from T] [--to T]   every entry checked against its digests (exit 3: not intact)
    config-audit recover [--since TIME]       audit the batches Lambda gave up on (FAILURE_BUCKET)
    config-audit export --from T --to T --format jsonl|csv --out FILE|s3://BUCKET/PREFIX/

Against AWS with the default credentials and the tables of --stage in the project's
.chalice/config.json (--project-dir, the current directory by default), or against the local
stack (--local: the one `make run` started, or --endpoint URL); --table SOURCE names the
audited table (default: the first of AUDITED_TABLES). These options go before or after the
command.
KEY is the item's key as text, as the history names it: a string as it is, a number as a
number, binary as base64; a hash and a range key as a JSON object: {"pk":"tenant-1","sk":7}.
Times are ISO 8601 with a zone (2024-09-11T09:03:00Z, 2024-09-11T09:03:00.250+02:00) or relative
to now: now, 90s, 15m, 2h, 7d. --output json (JSON Lines: the API's entries) or csv, on history,
changes, at and diff, goes before or after the command too.
A rollback writes with your own credentials, so CloudTrail names you, and only if the item is
still what its history says it is now; otherwise it refuses and says why.
Stored text (keys, values, times, ARNs) is printed escaped as JSON escapes it: it never reaches
the terminal as a control character.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError
from botocore.exceptions import ConnectionError as CannotConnect  # not the builtin of that name

from chalicelib.attribute_values import deserialize_image
from chalicelib.audit.keys import key_text
from chalicelib.aws_calls import CallFailed, ConfigurationError
from config_audit import changes, export, output, verify
from config_audit.backfill import backfill
from config_audit.cloudtrail_player import CloudTrailPlayer, identity_of
from config_audit.connection import REGION, client_arguments, endpoint_file, endpoint_problem, environment
from config_audit.errors import Answer, Incomplete, NotDone
from config_audit.history import newest_entries
from config_audit.items import checked_key, new_item
from config_audit.recover import recover as recover_failures
from config_audit.render import differences, printable, render_table, show
from config_audit.replay import item_at
from config_audit.rollback import plan_rollback, write_back
from config_audit.stage import UnknownStage, stage_environment
from config_audit.times import FORMS, check_order, now, parse_time
from config_audit.trail import Trail
from config_audit.typed_keys import key_schema, typed_key

LOCAL_STAGE = "local"  # the stage `make run` serves (local/stack.py)


def chosen_stage(args: argparse.Namespace) -> str:
    """--stage as given; else, with --local, the stage `make run` serves where the project has it
    (so the local stack's every table is read, not the dev stage's one), else dev."""
    if args.stage is not None:
        return str(args.stage)
    if args.local:
        try:
            stage_environment(LOCAL_STAGE, args.project_dir)
            return LOCAL_STAGE
        except UnknownStage:
            pass
    return "dev"


def stage_variables(args: argparse.Namespace) -> dict[str, str]:
    """The stage's environment variables, as Chalice gives them to its functions."""
    try:
        return stage_environment(args.stage, args.project_dir)
    except UnknownStage as unknown:
        raise NotDone(unknown.args[0]) from None


def connection(args: argparse.Namespace) -> dict[str, Any]:
    """boto3 client arguments: AWS with the default credentials, or the local stack's moto server.

    --local and --endpoint never fall back to AWS: an endpoint that is missing, empty or not a
    server's URL is refused before anything is sent anywhere.
    """
    if args.endpoint is not None:
        problem = endpoint_problem(args.endpoint)
        if problem is not None:
            raise NotDone(
                f"--endpoint {args.endpoint!r} is not a moto server's URL ({problem}): "
                "give one such as http://127.0.0.1:5000"
            )
        return client_arguments(args.endpoint)
    if not args.local:
        return {}
    running = endpoint_file(args.project_dir)
    try:
        endpoint = running.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise NotDone(
            f"no local stack is running for {args.project_dir.absolute()} (looked for {running}): "
            "start `make run` in the checkout, or name the checkout `make run` serves with --project-dir, "
            "or give --endpoint URL"
        ) from None
    except (OSError, UnicodeDecodeError) as error:  # a directory, unreadable, not text
        reason = getattr(error, "strerror", None) or "not UTF-8 text"
        raise NotDone(
            f"{running} cannot be read ({reason}): remove it and start `make run`, or give --endpoint URL"
        ) from None
    problem = endpoint_problem(endpoint)
    if problem is not None:
        raise NotDone(
            f"{running} does not hold a moto server's URL ({problem}): "
            "remove it and start `make run`, or give --endpoint URL"
        )
    return client_arguments(endpoint)


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


def play_cloudtrail(trail: Trail, session: dict[str, Any]) -> None:
    """On the local stack, each write of this CLI reaches actor_recorder as CloudTrail would deliver it.

    The recorder is called as the function would call it (chalicelib.wiring), not through
    chalice.test, whose imports (inquirer, blessed) query the terminal and stall it.
    """
    if trail.settings.actors_table_name is None:  # the stage attributes no call: nothing records one
        return
    os.environ.update(environment(session["endpoint_url"]))  # the recorder's own clients reach the same server
    from chalicelib import wiring

    recorder = wiring.recorder_for(trail.settings)

    def deliver(event: dict[str, Any]) -> Any:  # EventBridge's part: the event reaches actor_recorder
        with _function_logs_on_stderr():  # an operator's stdout holds only the answer
            return recorder.handle(event)

    CloudTrailPlayer(deliver, identity_of(boto3.client("sts", **session)), REGION).attach(trail.dynamodb)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr like every other failure."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {printable(message)} (see {self.prog} --help)\n")


def _connection_options(suppress: bool) -> _Parser:
    """--stage, --project-dir, --table, --local and --endpoint. After the command they default to
    nothing, so that they never overwrite what was given before it."""
    options = _Parser(add_help=False)

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    stage = "the stage in .chalice/config.json whose tables to use (default: dev; with --local, the local stage)"
    options.add_argument("--stage", default=default(None), help=stage)
    project = "the Chalice project whose .chalice/config.json names the tables (default: here)"
    options.add_argument("--project-dir", type=Path, default=default(Path.cwd()), help=project)
    table = "the audited table whose trail to read or write (AUDITED_TABLES' SOURCE; default: the first)"
    options.add_argument("--table", metavar="SOURCE", default=default(None), help=table)
    options.add_argument("--local", action="store_true", default=default(False), help="the stack `make run` started")
    endpoint = "a moto server's URL (implies the local stack's fake credentials)"
    options.add_argument("--endpoint", default=default(None), help=endpoint)
    return options


def _output_options(suppress: bool) -> _Parser:
    """--output, for the commands that read: like the connection options, before or after the command."""
    options = _Parser(add_help=False)
    default = argparse.SUPPRESS if suppress else "table"
    what = "table (for a person), json (JSON Lines: one entry a line, as the API renders it) or csv (with a header)"
    options.add_argument("--output", choices=output.FORMATS, default=default, help=what)
    return options


MAX_LIMIT = 10**18 - 1  # more than any trail holds; a bound, so that no text of digits is too big to count


def whole_number(text: str) -> int:
    """--limit's type: a whole number from 1 to MAX_LIMIT."""
    digits = text.lstrip("0")
    if not (text.isascii() and text.isdigit()) or not digits or len(digits) > 18:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_LIMIT:,}, not {text[:40]!r}")
    return int(digits)


KEY_HELP = (
    "the item's key as text, as the history names it: a string as it is, a number as a number, "
    'binary as base64; a hash and a range key as a JSON object, such as {"pk":"tenant-1","sk":7}'
)
TIME_HELP = FORMS
OUTPUT_COMMANDS = {"history", "changes", "at", "diff"}


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="config-audit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_connection_options(suppress=False), _output_options(suppress=False)],
    )
    after = [_connection_options(suppress=True)]
    commands = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, description: str, key: bool = True) -> argparse.ArgumentParser:
        """A command; ``key``: it takes the KEY argument (commands across keys do not)."""
        parents = [*after, _output_options(suppress=True)] if name in OUTPUT_COMMANDS else after
        sub = commands.add_parser(name, parents=parents, help=summary, description=description)
        if key:
            sub.add_argument("key", metavar="KEY", help=KEY_HELP)
        return sub

    history = command(
        "history", "every change of a key, with who made it",
        "Every change of KEY, oldest first: time, change, who made it, old -> new. "
        "--output json and csv give the entries newest first, as the API does.",
    )  # fmt: skip
    newest = "the newest N changes only (the table still shows them oldest first)"
    history.add_argument("--limit", type=whole_number, metavar="N", help=newest)
    history.add_argument("--since", metavar="TIME", help=f"the changes at or after TIME only: {FORMS}")
    changes.add_arguments(
        command(
            "changes", "every change across keys in a window, with who made it",
            "Every change of every key from --from (or --since) to --to, newest first, with who made it and "
            "in which table; without --table, of every audited table. Default: the last hour.",
            key=False,
        ),
        whole_number,
    )  # fmt: skip
    at = command("at", "what a key held at a time", "The item KEY held at TIME, replayed from its history, as JSON.")
    at.add_argument("time", metavar="TIME", help=TIME_HELP)
    diff = command("diff", "what changed between two times", "What changed in KEY between FROM and TO.")
    diff.add_argument("start", metavar="FROM", help=f"the earlier time: {TIME_HELP}")
    diff.add_argument("end", metavar="TO", help="the later time, in the same form")
    rollback = command(
        "rollback", "write a key back to what it held at a time",
        "Write KEY back to what it held at TIME, with your own credentials, only if the table still holds "
        "what the history says it holds now. Shows the difference and asks first (on stderr) unless --yes; "
        "with no terminal to ask on, it needs --yes.",
    )  # fmt: skip
    rollback.add_argument("--to", required=True, dest="time", metavar="TIME", help=TIME_HELP)
    rollback.add_argument("--yes", action="store_true", help="roll back without asking")
    put = command(
        "put", "create or replace a setting",
        "Create or replace the item KEY: VALUE in its 'value' attribute, and more attributes with --set. "
        "VALUE and each --set value are JSON (numbers exact), or else text.",
    )  # fmt: skip
    put.add_argument("value", metavar="VALUE", help="the item's 'value': JSON, or else text")
    put.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="another attribute (repeatable)")
    command("delete", "delete a setting", "Delete the item KEY.")
    export.add_arguments(
        command(
            "export", "write a window of changes to a file or to S3",
            "Every change from --from to --to (without --table: of every audited table), oldest first, into FILE "
            "or into s3://BUCKET/PREFIX/ (gzip'd, one object a day under dt=YYYY-MM-DD/), in bounded memory.",
            key=False,
        )
    )  # fmt: skip
    command(
        "backfill", "put entries written before the time index into it",
        "Once, after upgrading: rewrite each entry of the trail (of --table, or of every audited table) that "
        "the time index lacks, unchanged but for its index attribute, so that `changes` finds it. Safe to run twice.",
        key=False,
    )  # fmt: skip
    checked = command(
        "verify", "check the trail against its digests",
        "Check every entry of the window (default: the whole trail) of --table (default: every audited table) "
        "against the digests the producer wrote (DIGEST_BUCKET): exit status 0 and 'N entries verified against "
        "M digests', or exit status 3 and one line per entry altered, removed or slipped in.",
        key=False,
    )  # fmt: skip
    checked.add_argument("--from", dest="start", metavar="T1", help=f"the window's start (default: all): {TIME_HELP}")
    checked.add_argument("--to", dest="end", metavar="T2", help="the window's end, exclusive (default: now)")
    recover = command(
        "recover", "audit the batches Lambda gave up on",
        "Audit every change of each batch Lambda gave up on, from the stage's on-failure bucket (FAILURE_BUCKET), "
        "through the function's own code; mark each record done, so that running it again does nothing. "
        "--table: only that audited table's records.",
        key=False,
    )  # fmt: skip
    recover.add_argument("--since", metavar="TIME", help=f"only records written at or after TIME: {TIME_HELP}")
    return p


def ask_on_stderr(question: str) -> str:
    """The answer to ``question``, asked on stderr (stdout holds only the answer); EOFError at end of input."""
    sys.stdout.flush()  # what the question is about comes first
    sys.stderr.write(printable(question))
    sys.stderr.flush()
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line


def _confirmed(ask: Callable[[str], str], question: str) -> bool:
    try:
        return ask(question).strip().lower() in ("y", "yes")
    except EOFError:  # the input ended before an answer: not confirmed
        return False


@dataclass
class Command:
    """One invocation: what was asked, the stage's trail, and how to ask the operator (None: no one to ask).

    ``key`` is the checked KEY argument; "" for a command across keys, which takes none.
    """

    args: argparse.Namespace
    key: str
    trail: Trail
    session: dict[str, Any]
    ask: Callable[[str], str] | None


def history(c: Command) -> str:
    since = parse_time(c.args.since, bound=True) if c.args.since is not None else None
    entries = newest_entries(c.trail, c.key, c.args.limit, since)  # newest first, as the API pages them
    if c.args.output != "table":
        return output.entries_answer(entries, c.args.output, c.trail.table)
    if not entries:
        return f"no change of {c.key!r} since {since}"
    return render_table([deserialize_image(entry) for entry in reversed(entries)])


def at(c: Command) -> str:
    time = parse_time(c.args.time)
    held = item_at(c.trail.known_entries(c.key), c.key, time)
    if c.args.output != "table":
        return output.item_answer(held, c.args.output)
    return show(deserialize_image(held)) if held is not None else f"{c.key!r} did not exist at {time}"


def diff(c: Command) -> str:
    current = now()
    start, end = parse_time(c.args.start, current), parse_time(c.args.end, current)
    check_order(start, end, "FROM", "TO")
    entries = c.trail.known_entries(c.key)
    before, after = item_at(entries, c.key, start), item_at(entries, c.key, end)
    if c.args.output != "table":
        return output.differences_answer(c.key, before, after, c.args.output)
    lines = differences(before, after)
    return "\n".join(lines) if lines else f"{c.key!r} was the same at {start} and {end}"


def rollback(c: Command) -> str:
    time = parse_time(c.args.time)
    plan = plan_rollback(c.trail, c.key, time)
    lines = differences(plan.before, plan.after)  # the history's view: secrets as digests
    if not lines:
        return f"{c.key!r} already holds what it held at {time}: nothing to do"
    if not c.args.yes and c.ask is None:  # refused at once: nobody would ever answer
        raise NotDone("not confirmed: nothing written; give --yes to roll back without asking")
    print("\n".join(lines))
    if c.ask is not None and not c.args.yes and not _confirmed(c.ask, f"roll {c.key!r} back to {time}? [y/N] "):
        raise NotDone("not confirmed: nothing written")
    operator = boto3.client("sts", **c.session).get_caller_identity()["Arn"]
    return write_back(c.trail, c.key, plan.current, plan.target, operator)


def put(c: Command) -> str:
    key = typed_key(c.key, key_schema(c.trail.dynamodb, c.trail.table))
    c.trail.dynamodb.put_item(TableName=c.trail.table, Item=new_item(key, c.args.value, c.args.set))
    return f"put {key_text(key)!r}"


def delete(c: Command) -> str:
    key = typed_key(c.key, key_schema(c.trail.dynamodb, c.trail.table))
    c.trail.dynamodb.delete_item(TableName=c.trail.table, Key=key)
    return f"deleted {key_text(key)!r}"


def backfill_index(c: Command) -> str:
    tables = [c.trail.settings.table(c.args.table)] if c.args.table else c.trail.settings.audited_tables
    lines = []
    for table in tables:
        indexed = backfill(c.trail.dynamodb, table.trail)
        lines.append(f"{table.source}: {indexed} entries of {table.trail!r} put into the time index")
    return "\n".join(lines)


def recover(c: Command) -> Answer:
    return recover_failures(c.args, c.trail.settings, c.session)


COMMANDS: dict[str, Callable[[Command], str | Answer]] = {
    "history": history, "at": at, "diff": diff, "rollback": rollback, "put": put, "delete": delete,
    "changes": changes.changes, "export": export.export, "backfill": backfill_index,
    "verify": lambda c: verify.command(c.args, c.trail, c.session), "recover": recover,
}  # fmt: skip
WRITES = {"rollback", "put", "delete"}  # on the local stack, CloudTrail's part is played for these


def run(args: argparse.Namespace, ask: Callable[[str], str] | None = None) -> str | Answer:
    """The answer to one command line (an Answer where its exit status is not 0), or
    NotDone/Incomplete saying why not (nothing half-done).

    ``ask`` asks the operator a question; None: there is no one to ask (a rollback needs --yes).
    """
    args.stage = chosen_stage(args)
    key = checked_key(args.key) if "key" in args else ""
    if args.output != "table" and args.command not in OUTPUT_COMMANDS:
        raise NotDone(f"--output {args.output} is for {', '.join(sorted(OUTPUT_COMMANDS))}, not {args.command}")
    if args.command == "put":
        new_item({}, args.value, args.set)  # checked before anything connects; the key, once the schema is read
    session = connection(args)
    trail = Trail(stage_variables(args), session, args.table)
    if "endpoint_url" in session and args.command in WRITES:
        play_cloudtrail(trail, session)
    return COMMANDS[args.command](Command(args, key, trail, session, ask))


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
                f"the local stack in {endpoint_file(args.project_dir)} does not answer "
                "(`make run` stopped without removing it?): "
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


def say(text: str) -> None:
    """An answer on stdout, ending in one newline; nothing for an empty one (JSON Lines of no entry)."""
    sys.stdout.write(text if not text or text.endswith("\n") else text + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        answer = run(args, ask_on_stderr if sys.stdin is not None and sys.stdin.isatty() else None)
        if isinstance(answer, Answer):
            say(answer.text)
            return answer.status
        say(answer)
    except (NotDone, Incomplete) as refused:
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
