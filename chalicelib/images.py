"""DynamoDB attribute values (as the stream delivers them) -> Python values, and their sizes.

Conversion, by boto3's ``TypeDeserializer``::

    DynamoDB        Python
    S               str
    N               decimal.Decimal (38 digits, exact: 0.1 stays 0.1)
    B               boto3.dynamodb.types.Binary (raw bytes; Lambda sends them base64-encoded)
    BOOL            bool
    NULL            None
    M               dict
    L               list
    SS / NS / BS    set of str / Decimal / Binary

Audit entries carry the stream's attribute values through unchanged, which is exact by
construction; Python values are only needed to compare two values and to render them as JSON.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import Binary, TypeDeserializer

AttributeValue = dict[str, Any]
Image = Mapping[str, AttributeValue]

# DynamoDB's own limits: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html
MAX_ITEM_BYTES = 400 * 1024
MAX_NESTING_DEPTH = 32


class BadAttributeValue(ValueError):
    """An attribute value that is not a well-formed DynamoDB AttributeValue."""


class _StreamDeserializer(TypeDeserializer):  # type: ignore[misc]
    """TypeDeserializer that decodes binary as Lambda delivers it: base64 text, not bytes."""

    def _deserialize_b(self, value: Any) -> Binary:
        return super()._deserialize_b(_decode_b64(value))

    def _deserialize_n(self, value: Any) -> Decimal:
        number: Decimal = super()._deserialize_n(value)
        if not number.is_finite():  # boto3 reads "one" as NaN; DynamoDB has no NaN or Infinity
            raise BadAttributeValue(f"N value is not a number: {value!r:.40}")
        return number


_deserializer = _StreamDeserializer()


def to_python(value: AttributeValue) -> Any:
    """One attribute value -> its Python value (see the module's table)."""
    if not isinstance(value, dict) or len(value) != 1:
        raise BadAttributeValue(f"not an AttributeValue (one type tag and its value): {value!r:.80}")
    try:
        return _deserializer.deserialize(value)
    except BadAttributeValue:
        raise
    except (TypeError, ValueError, ArithmeticError, AttributeError) as error:
        raise BadAttributeValue(f"malformed AttributeValue {value!r:.80}: {error}") from error


_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _check_number(text: Any) -> None:
    if type(text) is str:  # unsigned and without exponent, as most are: digits and at most one point
        digits = text.replace(".", "", 1)
        if digits.isdigit() and digits.isascii():
            return
    if type(text) is not str or _NUMBER.fullmatch(text) is None:
        raise BadAttributeValue(f"N value is not a number: {text!r:.40}")


def _check_members(tag: str, members: Any, kind: type) -> None:
    if type(members) is not list or not members:
        raise BadAttributeValue(f"{tag} value is not a non-empty list")
    for member in members:  # a plain loop: all() over a generator costs more than the checks
        if type(member) is not kind:
            raise BadAttributeValue(f"{tag} value holds a member that is not {kind.__name__}")


def is_plain(value: Any) -> bool:
    """A string, or a whole number without sign or leading zeros ({"N": "17"}, not "017").

    Such a value is well-formed as it stands, and has one wire form only, so two plain values
    with different wire forms hold different values. Most values are plain; this is their
    shortcut past ``client_value`` and ``same_value``.
    """
    if type(value) is not dict or len(value) != 1:
        return False
    text = value.get("S")
    if type(text) is str:
        return True
    text = value.get("N")
    return type(text) is str and text.isdigit() and text.isascii() and (text[0] != "0" or len(text) == 1)


def client_value(value: Any, depth: int = 1) -> AttributeValue:
    """Check a value as Lambda delivers it and return it as boto3's client sends it.

    Binary arrives as base64 text and leaves as bytes; everything else is returned as the very
    same object, so passing values through stays cheap and exact. Raises BadAttributeValue,
    naming what is wrong, for anything that is not a well-formed AttributeValue.
    """
    if type(value) is not dict or len(value) != 1:
        raise BadAttributeValue(f"not an AttributeValue (one type tag and its value): {value!r:.60}")
    if depth > MAX_NESTING_DEPTH:
        raise BadAttributeValue(f"nested deeper than DynamoDB's {MAX_NESTING_DEPTH} levels")
    ((tag, inner),) = value.items()
    if tag == "S":
        if type(inner) is not str:
            raise BadAttributeValue(f"S value is not a string: {inner!r:.40}")
    elif tag == "N":
        _check_number(inner)
    elif tag == "BOOL":
        if type(inner) is not bool:
            raise BadAttributeValue(f"BOOL value is not true or false: {inner!r:.40}")
    elif tag == "NULL":
        if inner is not True:
            raise BadAttributeValue(f"NULL value is not true: {inner!r:.40}")
    elif tag == "SS":
        _check_members(tag, inner, str)
    elif tag == "NS":
        _check_members(tag, inner, str)
        for member in inner:
            _check_number(member)
    elif tag == "B":
        return {"B": _decode_b64(inner)}
    elif tag == "BS":
        if type(inner) is not list or not inner:
            raise BadAttributeValue("BS value is not a non-empty list")
        return {"BS": [_decode_b64(member) for member in inner]}
    elif tag == "M":
        if type(inner) is not dict:
            raise BadAttributeValue(f"M value is not a map: {inner!r:.40}")
        members = _checked_members(inner, depth + 1)
        return value if members is inner else {"M": members}
    elif tag == "L":
        if type(inner) is not list:
            raise BadAttributeValue(f"L value is not a list: {inner!r:.40}")
        elements: list[AttributeValue] | None = None
        for position, member in enumerate(inner):
            if is_plain(member):
                continue
            checked = client_value(member, depth + 1)
            if checked is not member:
                if elements is None:
                    elements = list(inner)
                elements[position] = checked
        return value if elements is None else {"L": elements}
    else:
        raise BadAttributeValue(f"unknown AttributeValue type {tag!r:.20}")
    return value


def _decode_b64(payload: Any) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if not isinstance(payload, str):
        raise BadAttributeValue(f"B value is not base64 text: {payload!r:.40}")
    try:
        return base64.b64decode(payload, validate=True)
    except binascii.Error as error:
        raise BadAttributeValue(f"B value is not base64: {error}") from error


def _checked_members(image: Image, depth: int) -> Image:
    converted: dict[str, AttributeValue] | None = None
    for name, value in image.items():
        if is_plain(value):
            continue
        try:
            checked = client_value(value, depth)
        except BadAttributeValue as error:
            raise BadAttributeValue(f"attribute {name!r:.60}: {error}") from None
        if checked is not value:
            if converted is None:
                converted = dict(image)
            converted[name] = checked
    return image if converted is None else converted


def client_image(image: Image) -> Image:
    """``client_value`` over a whole image: checked, binary decoded, else the same object."""
    return _checked_members(image, 1)


def deserialize_image(image: Image) -> dict[str, Any]:
    """A whole image (attribute name -> AttributeValue) -> a plain dict of Python values."""
    return {name: to_python(value) for name, value in image.items()}


_EXACT_FORMS = frozenset({"S", "B", "BOOL", "NULL"})  # one wire form per value: unequal forms differ


def same_value(left: AttributeValue, right: AttributeValue) -> bool:
    """True when two attribute values hold the same DynamoDB value (sets compare unordered)."""
    if left == right:  # the common case, and exact: equal wire forms are equal values
        return True
    ((tag, inner),), ((other_tag, other),) = left.items(), right.items()
    if tag != other_tag:
        return False
    if tag in _EXACT_FORMS:
        return False
    if tag == "N":  # "1" and "1.0" are one number; DynamoDB normalizes, this does not rely on it
        return Decimal(inner) == Decimal(other)
    return bool(to_python(left) == to_python(right)) and _type_tags(left) == _type_tags(right)


def _type_tags(value: Any) -> Any:
    """The type structure of a value, so that {"N": "1"} never equals {"BOOL": true}."""
    if isinstance(value, dict) and len(value) == 1:
        ((tag, inner),) = value.items()
        if tag == "M" and isinstance(inner, dict):
            return ("M", {k: _type_tags(v) for k, v in inner.items()})
        if tag == "L" and isinstance(inner, list):
            return ("L", [_type_tags(v) for v in inner])
        return tag
    return None


def _number_size(text: str) -> int:
    digits = text.lstrip("-").split("e")[0].split("E")[0].replace(".", "").strip("0")
    return len(digits) // 2 + 2


def _binary_size(payload: Any) -> int:
    if isinstance(payload, str):  # base64 text as Lambda delivers it
        return len(payload) * 3 // 4
    return len(payload)


def value_size(value: AttributeValue, depth: int = 1) -> int:
    """Bytes a value counts towards DynamoDB's item size limit (an upper bound where AWS rounds).

    Raises BadAttributeValue for a value nested deeper than DynamoDB accepts.
    """
    if depth > MAX_NESTING_DEPTH:
        raise BadAttributeValue(f"nested deeper than DynamoDB's {MAX_NESTING_DEPTH} levels")
    if not isinstance(value, dict) or len(value) != 1:
        raise BadAttributeValue(f"not an AttributeValue: {value!r:.80}")
    ((tag, inner),) = value.items()
    if tag == "S":
        return len(inner.encode())
    if tag == "N":
        return _number_size(inner)
    if tag == "B":
        return _binary_size(inner)
    if tag in ("BOOL", "NULL"):
        return 1
    if tag == "M":
        return 3 + sum(len(name.encode()) + 1 + value_size(member, depth + 1) for name, member in inner.items())
    if tag == "L":
        return 3 + sum(1 + value_size(member, depth + 1) for member in inner)
    if tag == "SS":
        return sum(len(member.encode()) for member in inner)
    if tag == "NS":
        return sum(_number_size(member) for member in inner)
    if tag == "BS":
        return sum(_binary_size(member) for member in inner)
    raise BadAttributeValue(f"unknown AttributeValue type {tag!r}")


def item_size(item: Image) -> int:
    """Bytes an item counts towards DynamoDB's 400 KB item limit."""
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())
