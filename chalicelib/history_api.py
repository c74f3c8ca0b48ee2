"""``GET /audit/{key}``: its inputs checked (every bad one a BadRequest that says what is wrong),
and its page rendered as JSON, numbers exact, under Lambda's response limit.

API Gateway (and ``chalice local``, and ``chalice.test.Client``) hand the path parameter over
still percent-encoded; it is decoded here exactly once, as UTF-8, so ``plain%20key`` is
``plain key``, ``feature%2Fflag`` is ``feature/flag`` and ``100%25`` is ``100%``. A ``+`` in a
path is a plus, not a space. Query parameters arrive decoded already.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.attribute_values import item_json
from chalicelib.audit.entries import Entry
from chalicelib.audit.keys import MAX_KEY_TEXT_BYTES

DEFAULT_LIMIT, MAX_LIMIT = 50, 1000
MAX_KEY_BYTES = MAX_KEY_TEXT_BYTES  # DynamoDB's limit for a partition key: the history index's
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


class BadRequest(ValueError):
    """An input of the history route that cannot be used; its message is shown to the caller."""


@dataclass(frozen=True)
class HistoryRequest:
    key: str
    limit: int
    next_token: str | None
    table: str | None = None  # ?table=SOURCE, the audited table; None: the first


def parse(raw_key: str, query: Mapping[str, str] | None) -> HistoryRequest:
    """The route's path parameter and query string -> what to read; BadRequest when bad."""
    query = query or {}
    table = query.get("table")
    if table is not None and not table:
        raise BadRequest("table is empty: name an audited table, or leave table out for the first")
    return HistoryRequest(decode_key(raw_key), page_limit(query.get("limit")), query.get("next") or None, table)


def decode_key(raw: str) -> str:
    """The configuration key a percent-encoded path segment names."""
    if _BAD_ESCAPE.search(raw):
        raise BadRequest("key is not percent-encoded: '%' must be followed by two hexadecimal digits")
    try:
        key = urllib.parse.unquote_to_bytes(raw).decode("utf-8")
    except UnicodeError:  # bytes that do not decode, or a lone surrogate that does not encode
        raise BadRequest("key is not UTF-8 once percent-decoded") from None
    if not key:
        raise BadRequest("key is empty")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise BadRequest(f"key is longer than {MAX_KEY_BYTES:,} bytes, so no configuration item can have it")
    return key


def page_limit(raw: str | None) -> int:
    """The page size: ``DEFAULT_LIMIT`` when absent, else a whole number from 1 to ``MAX_LIMIT``."""
    if raw is None:
        return DEFAULT_LIMIT
    if not (raw.isdigit() and raw.isascii()) or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}, not {raw[:40]!r}")
    return int(raw)


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
