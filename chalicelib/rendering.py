"""The history route's body: audit entries as JSON, numbers exact (the rules are in images.py)."""

from __future__ import annotations

import json

from chalicelib.changes import Entry
from chalicelib.images import item_json

# Lambda answers at most 6 MB; API Gateway adds headers. A page stops short of this many bytes.
MAX_BODY_BYTES = 5_000_000


def fitting(entries: list[Entry], budget: int = MAX_BODY_BYTES) -> list[str]:
    """The leading entries, rendered, whose page body stays under ``budget`` bytes (at least one:
    an entry is at most 400 KB in DynamoDB, so even all escapes it renders far below the budget)."""
    rendered: list[str] = []
    size = len(page_json([], "x" * 200))  # the envelope, with room for the longest token
    for entry in entries:
        text = item_json(entry)
        size += len(text.encode("utf-8", "surrogatepass")) + 1
        if rendered and size > budget:
            break
        rendered.append(text)
    return rendered


def page_json(rendered: list[str], next_token: str | None) -> str:
    """``{"entries": [...], "next": <token or null>}`` of entries ``item_json`` rendered."""
    return f'{{"entries":[{",".join(rendered)}],"next":{json.dumps(next_token)}}}'
