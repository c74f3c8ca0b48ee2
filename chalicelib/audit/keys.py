"""Pure: an item's key as text, the way every part of the trail names it (SPEC.md, "Audited tables").

    {"key": {"S": "CACHE_TTL_SEC"}}                     CACHE_TTL_SEC
    {"Id": {"N": "101.0"}}                              101
    {"pk": {"S": "tenant-1"}, "sk": {"S": "flag#x"}}    {"pk":"tenant-1","sk":"flag#x"}
    {"Id": {"N": "101"}, "Ver": {"N": "2"}}             {"Id":101,"Ver":2}
    {"blob": {"B": "AAE="}}                             AAE=

One key attribute: its value as text (a number in its shortest decimal form without exponent,
binary as base64). A hash and a range key: a JSON object of both, names sorted, no whitespace,
strings not ASCII-escaped. A text over 2,048 bytes (the history index's limit for a key) becomes
``sha256:`` and the hex digest of the text. Equal keys give equal text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_KEY_TEXT_BYTES = 2048
SEED_KEY = "key"  # the seed table's one string key: its entries carry no itemKeys
KEY_TYPES = ("S", "N", "B")


class BadKey(ValueError):
    """Keys that are not one or two attributes of type S, N or B with a value."""


def key_text(keys: Mapping[str, Any]) -> str:
    """The item's key as text; BadKey when ``keys`` (as Lambda delivers ``dynamodb.Keys``) is not a key."""
    plain = {name: _plain(name, value) for name, value in _checked(keys).items()}
    if len(plain) == 1:
        [value] = plain.values()
        text = value if isinstance(value, str) else _number_text(value)
    else:
        members = ",".join(
            f"{json.dumps(name, ensure_ascii=False)}:"
            + (json.dumps(value, ensure_ascii=False) if isinstance(value, str) else _number_text(value))
            for name, value in sorted(plain.items())
        )
        text = "{" + members + "}"
    return _indexable(text)


def is_seed_key(keys: Mapping[str, Any]) -> bool:
    """Whether the key is the seed table's: exactly one string attribute named ``key``."""
    return list(keys) == [SEED_KEY] and set(keys[SEED_KEY]) == {"S"}


def _checked(keys: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(keys, Mapping) or not 1 <= len(keys) <= 2:
        raise BadKey(f"Keys is not a map of one or two key attributes: {keys!r:.80}")
    for name, value in keys.items():
        if not isinstance(name, str) or not name:
            raise BadKey("a key attribute has no name")
        if not isinstance(value, Mapping) or len(value) != 1 or next(iter(value)) not in KEY_TYPES:
            raise BadKey(f"key attribute {name!r:.60} is not of type S, N or B: {value!r:.80}")
    return {name: dict(value) for name, value in keys.items()}


def _plain(name: str, value: dict[str, Any]) -> str | Decimal:
    """A key value as text (S, B as base64) or as a number (N)."""
    [(tag, payload)] = value.items()
    if tag == "S":
        if not isinstance(payload, str) or not payload:
            raise BadKey(f"key attribute {name!r:.60} is an empty or non-string S")
        return payload
    if tag == "N":
        try:
            number = Decimal(payload) if isinstance(payload, str) else None
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            raise BadKey(f"key attribute {name!r:.60} is not a number: {payload!r:.60}")
        return number
    raw = payload if isinstance(payload, bytes) else _unbase64(name, payload)
    if not raw:
        raise BadKey(f"key attribute {name!r:.60} is empty binary")
    return base64.b64encode(raw).decode()


def _unbase64(name: str, payload: Any) -> bytes:
    try:
        return base64.b64decode(payload, validate=True) if isinstance(payload, str) else b""
    except (binascii.Error, ValueError):
        raise BadKey(f"key attribute {name!r:.60} is not base64: {payload!r:.60}") from None


def _number_text(number: Decimal) -> str:
    """The shortest decimal form, without exponent: 42, 1.5, -0.001; 0 for every zero."""
    if number == 0:
        return "0"
    return format(number.normalize(), "f")


def loose_key_text(values: Mapping[str, str]) -> str:
    """The key as CloudTrail can name it, whose log gives key values untyped: one attribute, its
    value; two, a compact JSON object of both, names sorted, every value a string. The seed's and
    any one-attribute key read the same as ``key_text``; a composite key's numbers are quoted."""
    if len(values) == 1:
        [text] = values.values()
    else:
        text = json.dumps(dict(sorted(values.items())), ensure_ascii=False, separators=(",", ":"))
    return _indexable(text)


def _indexable(text: str) -> str:
    """The text, or ``sha256:<hex>`` of it where it is over the history index's 2,048 bytes."""
    raw = text.encode("utf-8", "surrogatepass")
    return "sha256:" + hashlib.sha256(raw).hexdigest() if len(raw) > MAX_KEY_TEXT_BYTES else text


def key_values(keys: Mapping[str, Any]) -> dict[str, str]:
    """Each key attribute's value as text: a string as it is, a number in its shortest form, binary
    as base64; BadKey where ``keys`` is not a key."""
    return {
        name: value if isinstance(value, str) else _number_text(value)
        for name, value in ((name, _plain(name, typed)) for name, typed in _checked(keys).items())
    }


def number_text(text: str) -> str | None:
    """A number's shortest decimal form (``1.50`` -> ``1.5``), or None where ``text`` is no number."""
    try:
        number = Decimal(text)
    except (InvalidOperation, TypeError, ValueError):
        return None
    return _number_text(number) if number.is_finite() else None
