"""Audit entries (attribute-value form) -> JSON text, numbers exact.

    DynamoDB   JSON
    S          string
    N          number, digit for digit (0.1 is 0.1, 38 digits stay 38 digits; never a float)
    B          base64 string
    BOOL/NULL  true, false / null
    M / L      object / array
    SS/NS/BS   sorted array of strings / numbers (numeric order) / base64 strings

The stdlib encoder would round numbers through float, so the text is built here directly.
"""

from __future__ import annotations

import base64
import json
from decimal import Decimal, InvalidOperation
from typing import Any

from chalicelib.images import AttributeValue, BadAttributeValue

_string = json.JSONEncoder(ensure_ascii=False).encode


def _number(text: str) -> str:
    try:
        number = Decimal(text)
    except (InvalidOperation, TypeError) as error:
        raise BadAttributeValue(f"N value is not a number: {text!r:.40}") from error
    if not number.is_finite():
        raise BadAttributeValue(f"N value is not a number: {text!r:.40}")
    return str(number)


def _b64(payload: Any) -> str:
    if isinstance(payload, str):
        return _string(payload)  # already base64, as Lambda delivers it
    return _string(base64.b64encode(bytes(payload)).decode())


def value_json(value: AttributeValue) -> str:
    """One attribute value as JSON text."""
    ((tag, inner),) = value.items()
    if tag == "S":
        return _string(inner)
    if tag == "N":
        return _number(inner)
    if tag == "BOOL":
        return "true" if inner else "false"
    if tag == "NULL":
        return "null"
    if tag == "M":
        return item_json(inner)
    if tag == "L":
        return "[" + ",".join(value_json(member) for member in inner) + "]"
    if tag == "SS":
        return "[" + ",".join(_string(member) for member in sorted(inner)) + "]"
    if tag == "NS":
        return "[" + ",".join(_number(m) for m in sorted(inner, key=Decimal)) + "]"
    if tag == "B":
        return _b64(inner)
    if tag == "BS":
        return "[" + ",".join(sorted(_b64(member) for member in inner)) + "]"
    raise BadAttributeValue(f"unknown AttributeValue type {tag!r}")


def item_json(item: dict[str, AttributeValue]) -> str:
    """A whole item (an audit entry, or an image) as a JSON object."""
    return "{" + ",".join(f"{_string(name)}:{value_json(value)}" for name, value in item.items()) + "}"


def page_json(entries: list[dict[str, AttributeValue]], next_token: str | None) -> str:
    """The history route's body: ``{"entries": [...], "next": <token or null>}``."""
    rendered = ",".join(item_json(entry) for entry in entries)
    return f'{{"entries":[{rendered}],"next":{"null" if next_token is None else _string(next_token)}}}'
