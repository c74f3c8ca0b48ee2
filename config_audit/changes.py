"""``changes``: what changed across keys in a window, newest first, with who made each change and
in which audited table, as ``GET /changes`` answers; read through chalicelib's ChangesReader (the
time index, never a scan).

    config-audit changes --since 1h                        the incident question
    config-audit changes --from 2h --to 1h --table FeatureFlags --kind updated,deleted --by alice
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Protocol

from chalicelib.attribute_values import deserialize_image
from chalicelib.audit.changes import ChangesQuery, ChangesReader
from chalicelib.audit.entries import ChangeKind, Entry
from config_audit.errors import NotDone
from config_audit.output import entries_answer
from config_audit.render import render_table
from config_audit.times import FORMS, check_order, entry_time, hour_before, now, parse_time

if TYPE_CHECKING:
    from config_audit.cli import Command

KINDS = tuple(kind.value for kind in ChangeKind)  # created, updated, deleted, expired


class Changes(Protocol):
    """What reads the changes of a window (chalicelib.audit.changes.ChangesReader, or a fake)."""

    def entries(self, query: ChangesQuery, oldest_first: bool = False) -> Iterator[Entry]: ...


def add_arguments(parser: argparse.ArgumentParser, limit: Callable[[str], int]) -> None:
    """The window and the filters; ``limit``: the --limit argument type (a whole number >= 1)."""
    start = parser.add_mutually_exclusive_group()
    since = f"from this time on, such as 1h (default: an hour before --to); {FORMS}"
    start.add_argument("--since", metavar="TIME", help=since)
    start.add_argument("--from", dest="start", metavar="TIME", help="the window's first moment (included)")
    parser.add_argument("--to", dest="end", metavar="TIME", help="the window's end (excluded; default: now)")
    parser.add_argument("--kind", metavar="K[,K]", help=f"only these kinds of change: {', '.join(KINDS)}")
    parser.add_argument("--by", metavar="TEXT", help="only changes whose actor's ARN (or a candidate's) holds TEXT")
    parser.add_argument("--limit", type=limit, metavar="N", help="the newest N changes only")


def kinds(text: str | None) -> frozenset[str]:
    """--kind K[,K] -> the kinds (empty: every kind); NotDone naming the kinds for any other word."""
    if text is None:
        return frozenset()
    given = [word.strip() for word in text.split(",")]
    unknown = [word for word in given if word not in KINDS]
    if unknown or not given:
        raise NotDone(f"--kind {text!r} is not a kind of change: give {', '.join(KINDS)} (comma-separated for several)")
    return frozenset(given)


def query(args: argparse.Namespace) -> ChangesQuery:
    """The window and filters the command line asks for, checked; every time read against one now."""
    current = now()
    end = parse_time(args.end, current) if args.end is not None else entry_time(current)
    if args.since is not None:
        start, start_name = parse_time(args.since, current), "--since"
    elif args.start is not None:
        start, start_name = parse_time(args.start, current), "--from"
    else:
        start, start_name = hour_before(end), "--from"
    check_order(start, end, start_name, "--to")
    if args.by is not None and not args.by:
        raise NotDone("--by is empty: give part of an ARN, such as alice or role/deploy")
    tables = (args.table,) if args.table is not None else ()
    return ChangesQuery(start, end, tables, kinds(args.kind), args.by)


def reader_for(c: Command) -> Changes:
    """The stage's changes reader, through the command's client and actors table."""
    return ChangesReader(c.trail.dynamodb, c.trail.settings, c.trail.actors)


def changes(c: Command) -> str:
    """The changes of the window, newest first, in the --output form."""
    wanted = query(c.args)
    found: Iterable[Entry] = reader_for(c).entries(wanted)
    if c.args.limit is not None:
        found = itertools.islice(found, c.args.limit)
    if c.args.output != "table":
        return entries_answer(found, c.args.output)
    shown = [deserialize_image(entry) for entry in found]
    if not shown:
        return f"no change from {wanted.start} to {wanted.end}{_filtered(wanted)}"
    return render_table(shown, with_table=True)


def _filtered(wanted: ChangesQuery) -> str:
    said = [f"in {', '.join(repr(table) for table in wanted.tables)}"] if wanted.tables else []
    said += [f"{' or '.join(sorted(wanted.kinds))}"] if wanted.kinds else []
    said += [f"by {wanted.actor!r}"] if wanted.actor is not None else []
    return f" ({', '.join(said)})" if said else ""
