"""The history route's body: audit entries as JSON, numbers exact (the rules are in images.py)."""

from __future__ import annotations

import json

from chalicelib.changes import Entry
from chalicelib.images import item_json


def page_json(entries: list[Entry], next_token: str | None) -> str:
    """``{"entries": [...], "next": <token or null>}``, each entry as ``item_json`` renders it."""
    rendered = ",".join(item_json(entry) for entry in entries)
    return f'{{"entries":[{rendered}],"next":{json.dumps(next_token)}}}'
