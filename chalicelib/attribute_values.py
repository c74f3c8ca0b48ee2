"""DynamoDB attribute values: one table of rules per type tag, and the walks built on it.

Every rule about a type lives in one row of ``SCALARS`` (or in ``walk`` for the containers):

    tag       Lambda sends            boto3's client sends   counts (item size)        JSON
    S         string                  the same               UTF-8 bytes               string
    N         decimal text            the same               digits / 2 + 2 (bound)    number, digit for digit
    B         base64 text             raw bytes              raw bytes                 base64 string
    BOOL      true / false            the same               1                         true / false
    NULL      true                    the same               1                         null
    SS/NS/BS  non-empty list of S/N/B  each member as above   sum of the members        sorted array
    M         {name: value}           each member as above   3 + (name + 1 + value)    object
    L         [value]                 each member as above   3 + (1 + value)           array

Two values are the same DynamoDB value when their ``canonical`` forms are equal: ``{"N": "1"}``
and ``{"N": "1.0"}`` are, set order does not count, and a type change always does.
Python values (for people and tests) come from boto3's ``TypeDeserializer``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from boto3.dynamodb.types import TypeDeserializer

AttributeValue = dict[str, Any]
Image = Mapping[str, AttributeValue]
T = TypeVar("T")

# DynamoDB's own limits: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html
MAX_ITEM_BYTES = 400 * 1024
MAX_NESTING_DEPTH = 32


class BadAttributeValue(ValueError):
    """An attribute value that is not a well-formed DynamoDB AttributeValue."""


@dataclass(frozen=True)
class Scalar:
    """The rules of one scalar type; its payload is what stands after the type tag."""

    tag: str
    check: Callable[[Any], Any]  # payload as Lambda sends it -> as boto3's client sends it, or BadAttributeValue
    size: Callable[[Any], int]  # bytes it counts towards the item size limit
    canonical: Callable[[Any], Any]  # equal (and ordered) as the DynamoDB values are
    json: Callable[[Any], str]


_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_json_string = json.JSONEncoder(ensure_ascii=False).encode


def _string(payload: Any) -> str:
    if type(payload) is not str:
        raise BadAttributeValue(f"S value is not a string: {payload!r:.40}")
    return payload


def _number(payload: Any) -> str:
    if type(payload) is not str or _NUMBER.fullmatch(payload) is None:
        raise BadAttributeValue(f"N value is not a number: {payload!r:.40}")
    return payload


def _number_size(text: str) -> int:
    digits = text.lstrip("-").split("e")[0].split("E")[0].replace(".", "").strip("0")
    return len(digits) // 2 + 2


def _binary(payload: Any) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if not isinstance(payload, str):
        raise BadAttributeValue(f"B value is not base64 text: {payload!r:.40}")
    try:
        return base64.b64decode(payload, validate=True)
    except binascii.Error as error:
        raise BadAttributeValue(f"B value is not base64: {error}") from error


def _base64(payload: bytes) -> str:
    return base64.b64encode(bytes(payload)).decode()


def _exactly(expected: Any, tag: str, meaning: str) -> Callable[[Any], Any]:
    def check(payload: Any) -> Any:
        if type(payload) is not bool or (expected is not None and payload is not expected):
            raise BadAttributeValue(f"{tag} value is not {meaning}: {payload!r:.40}")
        return payload

    return check


SCALARS: dict[str, Scalar] = {
    "S": Scalar("S", _string, lambda text: len(text.encode()), lambda text: text, _json_string),
    "N": Scalar("N", _number, _number_size, Decimal, lambda text: str(Decimal(text))),
    "B": Scalar("B", _binary, len, bytes, lambda raw: _json_string(_base64(raw))),
    "BOOL": Scalar("BOOL", _exactly(None, "BOOL", "true or false"), lambda _: 1, bool, json.dumps),
    "NULL": Scalar("NULL", _exactly(True, "NULL", "true"), lambda _: 1, lambda _: None, lambda _: "null"),
}
SETS: dict[str, Scalar] = {"SS": SCALARS["S"], "NS": SCALARS["N"], "BS": SCALARS["B"]}


class Visitor(Protocol[T]):
    """What one walk does at each kind of value; ``walk`` checks the structure around it."""

    def on_scalar(self, rule: Scalar, payload: Any) -> T: ...
    def on_set(self, tag: str, rule: Scalar, members: list[Any]) -> T: ...
    def on_map(self, members: dict[str, T]) -> T: ...
    def on_list(self, members: list[T]) -> T: ...


def walk(value: Any, visitor: Visitor[T], depth: int = 1) -> T:
    """Visit one attribute value, its members first; BadAttributeValue names what is malformed.

    ``depth`` is the value's nesting level, an item's own attributes being level 1.
    """
    if type(value) is not dict or len(value) != 1:
        raise BadAttributeValue(f"not an AttributeValue (one type tag and its value): {value!r:.60}")
    if depth > MAX_NESTING_DEPTH:
        raise BadAttributeValue(f"nested deeper than DynamoDB's {MAX_NESTING_DEPTH} levels")
    ((tag, payload),) = value.items()
    if tag in SCALARS:
        return visitor.on_scalar(SCALARS[tag], payload)
    if tag in SETS:
        if type(payload) is not list or not payload:
            raise BadAttributeValue(f"{tag} value is not a non-empty list")
        return visitor.on_set(tag, SETS[tag], payload)
    if tag == "M":
        if type(payload) is not dict:
            raise BadAttributeValue(f"M value is not a map: {payload!r:.40}")
        return visitor.on_map(walk_members(payload, visitor, depth + 1))
    if tag == "L":
        if type(payload) is not list:
            raise BadAttributeValue(f"L value is not a list: {payload!r:.40}")
        return visitor.on_list([walk(member, visitor, depth + 1) for member in payload])
    raise BadAttributeValue(f"unknown AttributeValue type {tag!r:.20}")


def walk_members(image: Image, visitor: Visitor[T], depth: int = 1) -> dict[str, T]:
    """``walk`` over each member of an image or map; BadAttributeValue names the attribute."""
    visited: dict[str, T] = {}
    for name, value in image.items():
        try:
            visited[name] = walk(value, visitor, depth)
        except BadAttributeValue as error:
            raise BadAttributeValue(f"attribute {name!r:.60}: {error}") from None
    return visited


class _Checked:
    """Checked, and as boto3's client sends it (binary as bytes)."""

    def on_scalar(self, rule: Scalar, payload: Any) -> AttributeValue:
        return {rule.tag: rule.check(payload)}

    def on_set(self, tag: str, rule: Scalar, members: list[Any]) -> AttributeValue:
        return {tag: [rule.check(member) for member in members]}

    def on_map(self, members: dict[str, AttributeValue]) -> AttributeValue:
        return {"M": members}

    def on_list(self, members: list[AttributeValue]) -> AttributeValue:
        return {"L": members}


class _Size:
    def on_scalar(self, rule: Scalar, payload: Any) -> int:
        return rule.size(payload)

    def on_set(self, tag: str, rule: Scalar, members: list[Any]) -> int:
        return sum(rule.size(member) for member in members)

    def on_map(self, members: dict[str, int]) -> int:
        return 3 + sum(len(name.encode()) + 1 + size for name, size in members.items())

    def on_list(self, members: list[int]) -> int:
        return 3 + sum(1 + size for size in members)


class _Canonical:
    def on_scalar(self, rule: Scalar, payload: Any) -> Hashable:
        return (rule.tag, rule.canonical(payload))

    def on_set(self, tag: str, rule: Scalar, members: list[Any]) -> Hashable:
        return (tag, frozenset(rule.canonical(member) for member in members))

    def on_map(self, members: dict[str, Hashable]) -> Hashable:
        return ("M", frozenset(members.items()))

    def on_list(self, members: list[Hashable]) -> Hashable:
        return ("L", tuple(members))


class _Json:
    def on_scalar(self, rule: Scalar, payload: Any) -> str:
        return rule.json(payload)

    def on_set(self, tag: str, rule: Scalar, members: list[Any]) -> str:
        return "[" + ",".join(rule.json(member) for member in sorted(members, key=rule.canonical)) + "]"

    def on_map(self, members: dict[str, str]) -> str:
        return "{" + ",".join(f"{_json_string(name)}:{text}" for name, text in members.items()) + "}"

    def on_list(self, members: list[str]) -> str:
        return "[" + ",".join(members) + "]"


_CHECKED, _SIZE, _CANONICAL, _JSON = _Checked(), _Size(), _Canonical(), _Json()


def client_value(value: Any) -> AttributeValue:
    """Check a value as Lambda delivers it; return it as boto3's client sends it."""
    return walk(value, _CHECKED)


def client_image(image: Image) -> dict[str, AttributeValue]:
    """``client_value`` over a whole image; BadAttributeValue names the attribute."""
    return walk_members(image, _CHECKED)


class _Fingerprint:
    """A JSON-able form equal exactly for equal DynamoDB values: type tags kept, numbers
    normalized (1, 1.0 and 10E-1 alike), sets and map members sorted."""

    def on_scalar(self, rule: Scalar, payload: Any) -> Any:
        return [rule.tag, _fingerprint_text(rule.canonical(payload))]

    def on_set(self, tag: str, rule: Scalar, members: list[Any]) -> Any:
        return [tag, sorted({_fingerprint_text(rule.canonical(member)) for member in members})]

    def on_map(self, members: dict[str, Any]) -> Any:
        return ["M", sorted(members.items())]

    def on_list(self, members: list[Any]) -> Any:
        return ["L", members]


def _fingerprint_text(canonical: Any) -> str:
    if isinstance(canonical, Decimal):
        return "0" if canonical.is_zero() else str(canonical.normalize())
    if isinstance(canonical, bytes):
        return _base64(canonical)
    return json.dumps(canonical)  # a string quoted, true / false, null


_FINGERPRINT = _Fingerprint()


def fingerprint(value: Any) -> bytes:
    """Bytes equal exactly for equal DynamoDB values (same type, same value), for digests.

    A malformed value still gets bytes of its own (its JSON text), never an error.
    """
    try:
        form = walk(client_value(value), _FINGERPRINT)
    except BadAttributeValue:
        form = ["?", json.dumps(value, sort_keys=True, default=str)]
    return json.dumps(form, ensure_ascii=False, separators=(",", ":")).encode()


def same_value(left: AttributeValue, right: AttributeValue) -> bool:
    """True when two checked attribute values hold the same DynamoDB value."""
    return left == right or walk(left, _CANONICAL) == walk(right, _CANONICAL)  # equal forms: equal values


def changed_names(
    before: Image, after: Image, same: Callable[[AttributeValue, AttributeValue], bool] = same_value
) -> list[str]:
    """The attribute names, sorted, whose value differs between two items: in one and not the
    other, or unequal by ``same`` (by default: as DynamoDB values)."""
    names = sorted(before.keys() | after.keys())
    return [name for name in names if not (name in before and name in after and same(before[name], after[name]))]


def item_size(item: Image) -> int:
    """Bytes an item counts towards DynamoDB's 400 KB item limit (an upper bound where AWS rounds)."""
    return sum(len(name.encode()) + size for name, size in walk_members(item, _SIZE).items())


def item_json(item: Image) -> str:
    """A whole item (an audit entry, or an image) as a JSON object, numbers exact."""
    return _JSON.on_map(walk_members(item, _JSON))


_deserializer = TypeDeserializer()


def deserialize_image(image: Image) -> dict[str, Any]:
    """A whole image as boto3's client returns it -> plain Python values (numbers as Decimal)."""
    return {name: _deserializer.deserialize(value) for name, value in image.items()}
