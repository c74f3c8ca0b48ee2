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
        if isinstance(value, str):
            try:
                value = base64.b64decode(value, validate=True)
            except binascii.Error as error:
                raise BadAttributeValue(f"B value is not base64: {error}") from error
        return super()._deserialize_b(value)

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


def _decode_b64(payload: Any) -> Any:
    if not isinstance(payload, str):
        return payload
    try:
        return base64.b64decode(payload, validate=True)
    except binascii.Error as error:
        raise BadAttributeValue(f"B value is not base64: {error}") from error


def client_value(value: AttributeValue) -> AttributeValue:
    """A value as Lambda delivers it -> as boto3's client sends it: binary as bytes, not base64.

    Returns the very same object when nothing inside is binary (the common case costs one
    lookup), so that passing values through stays cheap and exact.
    """
    if type(value) is not dict or len(value) != 1:
        return value  # left for DynamoDB to refuse; the repository isolates it
    ((tag, inner),) = value.items()
    if tag == "B":
        return {"B": _decode_b64(inner)}
    if tag == "BS" and type(inner) is list:
        return {"BS": [_decode_b64(member) for member in inner]}
    if tag == "M" and type(inner) is dict:
        members = client_image(inner)
        return value if members is inner else {"M": members}
    if tag == "L" and type(inner) is list:
        converted = [client_value(member) for member in inner]
        if all(new is old for new, old in zip(converted, inner, strict=True)):
            return value
        return {"L": converted}
    return value


_NO_BINARY = frozenset({"S", "N", "BOOL", "NULL", "SS", "NS"})


def client_image(image: Image) -> Image:
    """``client_value`` over a whole image; the same object when it holds no binary."""
    for value in image.values():
        if type(value) is not dict or len(value) != 1 or next(iter(value)) not in _NO_BINARY:
            break
    else:
        return image
    converted = {name: client_value(value) for name, value in image.items()}
    if all(converted[name] is value for name, value in image.items()):
        return image
    return converted


def deserialize_image(image: Image) -> dict[str, Any]:
    """A whole image (attribute name -> AttributeValue) -> a plain dict of Python values."""
    return {name: to_python(value) for name, value in image.items()}


def same_value(left: AttributeValue, right: AttributeValue) -> bool:
    """True when two attribute values hold the same DynamoDB value (sets compare unordered)."""
    if left == right:  # the common case, and exact: equal wire forms are equal values
        return True
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
        return 3 + sum(
            len(name.encode()) + 1 + value_size(member, depth + 1) for name, member in inner.items()
        )
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
