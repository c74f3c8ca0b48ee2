"""What an operator writes: a KEY and an item, checked before anything connects or is written.

DynamoDB refuses text that is not UTF-8, values nested deeper than 32 levels and map members
with an empty name; moto stores some of them, and the change then never reaches the trail. So
each is refused here, in one line that names the attribute.
"""

from __future__ import annotations

import decimal
import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, NoReturn

from boto3.dynamodb.types import TypeSerializer

from chalicelib.attribute_values import AttributeValue, BadAttributeValue, client_value
from chalicelib.history_api import MAX_KEY_BYTES
from config_audit.errors import NotDone
from config_audit.render import AttributePath, spelled_path
from config_audit.replay import Item

VALUE_ATTRIBUTE = "value"  # where put's VALUE goes


def utf8_problem(text: str) -> str | None:
    """Why ``text`` cannot be sent as UTF-8 (a byte from argv that is not UTF-8, a lone surrogate); None if it can."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        code = ord(text[error.start])
        if 0xDC80 <= code <= 0xDCFF:  # how Python hands over an argv byte that does not decode
            return f"the byte 0x{code - 0xDC00:02x} is not UTF-8"
        return f"it holds the lone surrogate \\u{code:04x}, which UTF-8 cannot encode"
    return None


def checked_text(what: str, text: str) -> str:
    """``text`` (an argument or a name), refused in one line when it is not UTF-8 text."""
    problem = utf8_problem(text)
    if problem is not None:
        raise NotDone(f"{what} is not UTF-8 text ({problem}): DynamoDB keeps text as UTF-8")
    return text


def checked_key(key: str) -> str:
    """The KEY argument, refused when empty, not UTF-8, or longer than a key can be."""
    if not key:
        raise NotDone("KEY is empty: name a configuration key")
    checked_text("KEY", key)
    if len(key.encode()) > MAX_KEY_BYTES:  # the history API's words for the same limit
        raise NotDone(f"key is longer than {MAX_KEY_BYTES:,} bytes, so no configuration item can have it")
    return key


def _no_constant(text: str) -> NoReturn:
    raise ValueError(f"{text} is no number DynamoDB holds")


def _too_deep(name: str) -> NotDone:
    return NotDone(f"attribute {name!r} is nested deeper than DynamoDB's 32 levels")


def parse_value(name: str, text: str) -> Any:
    """A JSON value (numbers exact), or else the text itself as a string."""
    try:
        return json.loads(text, parse_float=Decimal, parse_int=Decimal, parse_constant=_no_constant)
    except ValueError:
        return text
    except RecursionError:  # deeper than Python's parser goes, so far deeper than DynamoDB's 32
        raise _too_deep(name) from None


def serialized(name: str, value: Any) -> AttributeValue:
    """A plain value as an attribute value; refused where DynamoDB could not store it."""
    try:
        attribute: AttributeValue = TypeSerializer().serialize(value)
    except (TypeError, ValueError, decimal.DecimalException):  # boto3 traps what DynamoDB would round
        raise NotDone(
            f"attribute {name!r} holds a number DynamoDB cannot store exactly "
            "(at most 38 significant digits, between 1E-130 and 1E+126)"
        ) from None
    except RecursionError:
        raise _too_deep(name) from None
    try:
        client_value(attribute)  # the function's own check of what it audits, depth included
    except BadAttributeValue:  # boto3 built the value from JSON, so only its depth can be amiss
        raise _too_deep(name) from None
    problem = _text_problem(attribute, (name,))
    if problem is not None:
        raise NotDone(f"attribute {name!r} cannot be stored: {problem}")
    return attribute


def _text_problem(value: AttributeValue, path: AttributePath) -> str | None:
    """Where ``value`` holds text DynamoDB refuses: not UTF-8, or a map member with no name."""
    [(tag, payload)] = value.items()
    texts = [payload] if tag == "S" else payload if tag == "SS" else []
    for text in texts:
        problem = utf8_problem(text)
        if problem is not None:
            return f"{spelled_path(path)} is not UTF-8 text ({problem})"
    members = payload.items() if tag == "M" else enumerate(payload) if tag == "L" else []
    for step, member in members:
        if step == "":
            return f"{spelled_path(path)} has a member with an empty name"
        if isinstance(step, str) and utf8_problem(step) is not None:
            return f"{spelled_path(path)} has a member whose name is not UTF-8 text ({utf8_problem(step)})"
        problem = _text_problem(member, (*path, step))
        if problem is not None:
            return problem
    return None


def new_item(key: Item, value: str, assignments: Sequence[str]) -> Item:
    """The item ``put`` writes: ``key``'s attributes, VALUE, and each ``--set NAME=VALUE``; refused when malformed."""
    if VALUE_ATTRIBUTE in key:
        raise NotDone(f"the table's key has an attribute {VALUE_ATTRIBUTE!r}, so VALUE has nowhere to go")
    item: Item = dict(key)
    item[VALUE_ATTRIBUTE] = serialized(VALUE_ATTRIBUTE, parse_value(VALUE_ATTRIBUTE, checked_text("VALUE", value)))
    for assignment in assignments:
        name, equals, text = checked_text(f"--set {assignment!r}", assignment).partition("=")
        if not equals:
            raise NotDone(f"--set {assignment!r} has no '=': write --set NAME=VALUE")
        if not name:
            raise NotDone(f"--set {assignment!r} has no attribute name before '='")
        if name in key:
            raise NotDone(f"--set cannot change {name!r}, the item's key: give it as KEY")
        if name == VALUE_ATTRIBUTE:
            raise NotDone(f"--set cannot set {name!r}: VALUE is the item's {name!r}, given once after KEY")
        if name in item:
            raise NotDone(f"attribute {name!r} is given twice")
        item[name] = serialized(name, parse_value(name, text))
    return item
