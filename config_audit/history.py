"""``history KEY [--limit N] [--since TIME]``: a key's newest entries, read a page at a time, only as
far back as asked."""

from __future__ import annotations

from chalicelib.actors.attribution import with_actors
from chalicelib.audit.entries import Entry, time_of
from config_audit.errors import NotDone
from config_audit.trail import Trail

PAGE = 1000  # the most the history index returns in one page


def newest_entries(trail: Trail, key: str, limit: int | None = None, since: str | None = None) -> list[Entry]:
    """The newest ``limit`` entries of ``key`` (None: all) at or after ``since`` (None: ever), newest
    first, with who made each; NotDone when the key has no history at all.

    Pages are read newest first and no further than needed: ``--limit 5`` reads one page of five.
    """
    found: list[Entry] = []
    token = None
    while True:
        wanted = PAGE if limit is None else min(limit - len(found), PAGE)
        page = trail.audit.history(key, wanted, token)
        if token is None and not page.entries:
            raise NotDone(f"no history for {key!r}: no change of it in table {trail.table!r} was ever audited")
        for entry in page.entries:
            if since is not None and time_of(entry) < since:  # newest first: every later entry is older
                return with_actors(found, trail.actors, trail.table)
            found.append(entry)
        if page.next is None or len(found) == limit:
            return with_actors(found, trail.actors, trail.table)
        token = page.next
