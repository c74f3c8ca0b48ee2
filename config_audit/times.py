"""Times as an operator gives them, as the entries hold them (``YYYY-MM-DDTHH:MM:SS.mmmZ``, UTC).

An operator gives a time in one of two forms:

    ISO 8601 with a zone    2024-09-11T09:03:00Z, 2024-09-11T11:03:00.250+02:00
    relative to now         now, 90s, 15m, 2h, 7d (a positive whole number of seconds, minutes,
                            hours or days before now)
"""

from __future__ import annotations

import datetime as dt
import re

from chalicelib.audit import records
from chalicelib.audit.records import hour_before as hour_before  # the CLI's times, in one module
from config_audit.errors import NotDone

FORMS = (
    "ISO 8601 with a zone, such as 2024-09-11T09:03:00Z, or relative to now: "
    "now, 90s, 15m, 2h or 7d (a positive whole number and s, m, h or d)"
)
_RELATIVE = re.compile(r"([0-9]+)([smhd])", re.ASCII)
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_RANGE = "outside the times the history holds (years 0001 to 9999 in UTC)"


def now() -> dt.datetime:
    """The moment a command reads its relative times from (one per command, so that they agree)."""
    return dt.datetime.now(dt.UTC)


def parse_time(text: str, at: dt.datetime | None = None, bound: bool = False) -> str:
    """A time in either form (``at``: the command's now) -> the entries' ``YYYY-MM-DDTHH:MM:SS.mmmZ``;
    NotDone naming the forms when it is neither, outside years 0001-9999, or (but for a window's
    ``bound``) in the future.

    The entries' times are whole milliseconds. A moment (``at KEY TIME``) keeps the entries at or
    before it, so it is cut to its millisecond; a window's ``bound`` (``--from``, ``--to``,
    ``--since``: entries at or after from, before to) goes up to the next one, as GET /changes does.
    """
    current = at or now()
    moment = _relative(text, current)
    if moment is None:
        moment = _absolute(text)
    if moment > current and not bound:  # a window may reach past now, as GET /changes' may: nothing is there yet
        raise NotDone(f"time {text!r} is in the future")
    return entry_time(moment, bound)


def entry_time(moment: dt.datetime, bound: bool = False) -> str:
    """``records.entry_time``; a ``bound`` in the format's last millisecond stays there (nothing comes after it)."""
    try:
        return records.entry_time(moment, bound)
    except OverflowError:
        return records.entry_time(moment)


def check_order(start: str, end: str, start_name: str, end_name: str) -> None:
    """NotDone when ``start`` is after ``end`` (both entries' times: fixed-width UTC, so text order is time order)."""
    if start > end:
        raise NotDone(f"{start_name} {start} is after {end_name} {end}: give the earlier time first")


def _relative(text: str, current: dt.datetime) -> dt.datetime | None:
    """``now`` or ``<N><unit>`` before ``current``; None when ``text`` is not of that form."""
    if text == "now":
        return current
    match = _RELATIVE.fullmatch(text)
    if match is None:
        return None
    if len(match[1].lstrip("0")) > 12:  # more days than the format's ten thousand years; int() stays cheap
        raise NotDone(f"time {text!r} is {_RANGE}")
    count = int(match[1])
    if count < 1:
        raise NotDone(f"time {text!r} is not {FORMS}")
    try:
        return current - dt.timedelta(**{_UNIT[match[2]]: count})
    except OverflowError:  # more days than a timedelta holds, or before year 0001
        raise NotDone(f"time {text!r} is {_RANGE}") from None


def _absolute(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise NotDone(f"time {text!r} is not {FORMS}") from None
    if moment.tzinfo is None:
        raise NotDone(f"time {text!r} has no zone: add Z for UTC, or an offset such as +02:00")
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is in year 0 in UTC, 9999-12-31T23:00-05:00 in 10000
        raise NotDone(f"time {text!r} is {_RANGE}") from None
