"""Times as an operator gives them, as the entries hold them (``YYYY-MM-DDTHH:MM:SS.mmmZ``, UTC)."""

from __future__ import annotations

import datetime as dt

from config_audit.errors import NotDone


def parse_time(text: str, now: dt.datetime | None = None) -> str:
    """An ISO 8601 time with a zone -> the entries' ``YYYY-MM-DDTHH:MM:SS.mmmZ``; not in the future."""
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise NotDone(f"time {text!r} is not ISO 8601, such as 2024-09-11T09:03:00Z") from None
    if moment.tzinfo is None:
        raise NotDone(f"time {text!r} has no zone: add Z for UTC, or an offset such as +02:00")
    try:
        moment = moment.astimezone(dt.UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is in year 0 in UTC, 9999-12-31T23:00-05:00 in 10000
        raise NotDone(f"time {text!r} is outside the times the history holds (years 0001 to 9999 in UTC)") from None
    if moment > (now or dt.datetime.now(dt.UTC)):
        raise NotDone(f"time {text!r} is in the future")
    # %Y gives 999, not 0999, for years before 1000: the year is written out with its four digits
    return f"{moment.year:04d}" + moment.strftime("-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
