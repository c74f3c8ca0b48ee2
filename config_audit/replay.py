"""Replaying the audit history: what an audited table held, as of any moment.

    >>> state = replay(entries)                         # every key, as of the last entry
    >>> setting_at(repository, "CACHE_TTL_SEC", "2024-09-11T09:03:00.000Z")
    {'key': {'S': 'CACHE_TTL_SEC'}, 'value': {'N': '3600'}}

Entries are in attribute-value form, as the repository and the Audit table hold them. They are
applied in sequence-number order (compared as integers): a created item sets the whole item, an
updated attribute sets or removes that attribute, a deletion removes the item.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chalicelib.audit.entries import Entry, attribute_of, item_key_of, sequence_order, time_of
from chalicelib.audit.records import KEY_ATTRIBUTE
from chalicelib.audit.repository import AuditRepository

Item = dict[str, dict[str, Any]]


def replay(entries: Iterable[Entry], until: str | None = None) -> dict[str, Item]:
    """Rebuild every key's item from its history; ``until`` (a modificationTime) stops there."""
    state: dict[str, Item] = {}
    for entry in sorted(entries, key=sequence_order):
        if until is not None and time_of(entry) > until:
            continue
        key, name = item_key_of(entry), attribute_of(entry)
        if name is not None:  # an update before any creation in the history: the item holds at least its key
            item = state.setdefault(key, key_of(entry))
            if "newValue" in entry:
                item[name] = entry["newValue"]
            else:
                item.pop(name, None)
        elif "newValue" in entry:
            state[key] = dict(entry["newValue"]["M"])
        else:
            state.pop(key, None)
    return state


def key_of(entry: Entry) -> Item:
    """The item's typed key: the entry's itemKeys, or the seed table's one string ``key`` where it has none."""
    item_keys = entry.get("itemKeys")
    if item_keys is not None:
        return dict(item_keys["M"])
    return {KEY_ATTRIBUTE: {"S": item_key_of(entry)}}


def whole_history(repository: AuditRepository, key: str) -> list[Entry]:
    """Every entry of ``key``, newest first: all the pages of its history."""
    entries: list[Entry] = []
    token = None
    while True:
        page = repository.history(key, 1000, token)
        entries.extend(page.entries)
        if page.next is None:
            return entries
        token = page.next


def item_at(entries: Iterable[Entry], key: str, time: str | None) -> Item | None:
    """The item ``key`` held at ``time`` (``YYYY-MM-DDTHH:MM:SS.mmmZ``; None: after the last entry)."""
    return replay(entries, until=time).get(key)


def setting_at(repository: AuditRepository, key: str, at: str) -> Item | None:
    """The item ``key`` held at time ``at``, read from the repository, or None if absent then."""
    return item_at(whole_history(repository, key), key, at)
