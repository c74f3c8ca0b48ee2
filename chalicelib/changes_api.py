"""``GET /changes``: its query string checked (every bad input a BadRequest that says why) and
turned into a ChangesQuery, a page size and a token.

``from`` and ``to`` are ISO 8601 with a zone; the window is [from, to). Entries carry times to the
millisecond, so a bound given finer is rounded up to the next millisecond: an entry at .250 lies
before a bound of .2501, and stays before it as .251, whether the bound is ``from`` or ``to``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.audit.changes import KINDS, ChangesQuery, token_window
from chalicelib.audit.records import entry_time, hour_before
from chalicelib.history_api import BadRequest, page_limit
from chalicelib.settings import Settings

DEFAULT_WINDOW = dt.timedelta(hours=1)
PARAMETERS = ("from", "to", "table", "kind", "actor", "limit", "next")


@dataclass(frozen=True)
class ChangesRequest:
    query: ChangesQuery
    limit: int
    next_token: str | None


def parse(params: Mapping[str, str] | None, settings: Settings, now: dt.datetime | None = None) -> ChangesRequest:
    """The route's query string -> what to read; BadRequest (or UnknownTable) when bad."""
    params = params or {}
    unknown = sorted(set(params) - set(PARAMETERS))
    if unknown:
        raise BadRequest(f"unknown parameter {unknown[0][:40]!r}: the parameters are {', '.join(PARAMETERS)}")
    several = getattr(params, "getlist", None)  # Chalice's MultiDict: a parameter given twice keeps the last
    repeated = [name for name in PARAMETERS if several is not None and name in params and len(several(name)) > 1]
    if repeated:
        raise BadRequest(
            f"{repeated[0]} is given more than once: give it once (kind takes several kinds, comma-separated)"
        )
    next_token = params.get("next") or None
    start, end = _window(params, next_token, now or dt.datetime.now(dt.UTC))
    table = params.get("table")
    if table is not None:
        if not table:
            raise BadRequest("table is empty: name an audited table, or leave table out for all of them")
        settings.table(table)  # UnknownTable lists the audited tables
    actor = params.get("actor")
    if actor is not None and not actor:
        raise BadRequest("actor is empty: give part of an ARN, such as a user or role name")
    query = ChangesQuery(start, end, (table,) if table else (), _kinds(params.get("kind")), actor)
    return ChangesRequest(query, page_limit(params.get("limit")), next_token)


def _window(params: Mapping[str, str], next_token: str | None, now: dt.datetime) -> tuple[str, str]:
    """[from, to) in the entries' time form; absent, the last hour to now (or the token's window,
    so that the pages of one such request keep the window of its first)."""
    given = {name: iso_time(params[name], name) for name in ("from", "to") if name in params}
    if next_token and len(given) < 2:
        start, end = token_window(next_token)
        given = {"from": start, "to": end, **given}
    end = given.get("to") or entry_time(now)
    start = given.get("from") or hour_before(end)
    if start > end:
        raise BadRequest(f"from {start} is after to {end}: give the earlier time as from")
    return start, end


def _kinds(raw: str | None) -> frozenset[str]:
    if raw is None:
        return frozenset()
    kinds = raw.split(",")
    bad = [kind for kind in kinds if kind not in KINDS]
    if bad:
        raise BadRequest(f"kind {bad[0][:40]!r} is not one of {', '.join(KINDS)} (comma-separated for several)")
    return frozenset(kinds)


def iso_time(text: str, name: str) -> str:
    """An ISO 8601 time with a zone -> the entries' ``YYYY-MM-DDTHH:MM:SS.mmmZ``, rounded up to the millisecond."""
    shown = repr(text[:60])
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        plus = " (a '+' in a URL is a space: write an offset's + as %2B)" if " " in text else ""
        raise BadRequest(f"{name} {shown} is not an ISO 8601 time, such as 2024-09-11T09:03:00Z{plus}") from None
    if moment.tzinfo is None:
        raise BadRequest(f"{name} {shown} has no zone: add Z for UTC, or an offset such as +02:00")
    try:
        return entry_time(moment, bound=True)
    except OverflowError:
        raise BadRequest(f"{name} {shown} is outside the times the trail holds (years 0001 to 9999 in UTC)") from None
