"""The type table and its walks: checking, sizing, comparing and rendering."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import Binary

from chalicelib.attribute_values import (
    BadAttributeValue,
    client_image,
    client_value,
    deserialize_image,
    item_json,
    item_size,
    same_value,
)

# (as Lambda sends it, as boto3's client sends it, bytes it counts, its JSON, its Python value);
# a number counts its significant digits / 2 + 2 ("3600": 3), an upper bound of what AWS counts
TYPES = [
    ({"S": "é"}, {"S": "é"}, 2, '"é"', "é"),
    ({"N": "3600"}, {"N": "3600"}, 3, "3600", Decimal(3600)),
    ({"N": "0.1"}, {"N": "0.1"}, 2, "0.1", Decimal("0.1")),
    ({"N": "-12345678901234567890123456789012345678"}, {"N": "-12345678901234567890123456789012345678"}, 21,
     "-12345678901234567890123456789012345678", Decimal("-12345678901234567890123456789012345678")),
    ({"B": "AAEC"}, {"B": b"\x00\x01\x02"}, 3, '"AAEC"', Binary(b"\x00\x01\x02")),
    ({"BOOL": False}, {"BOOL": False}, 1, "false", False),
    ({"NULL": True}, {"NULL": True}, 1, "null", None),
    ({"SS": ["b", "a"]}, {"SS": ["b", "a"]}, 2, '["a","b"]', {"a", "b"}),
    ({"NS": ["10", "9.5"]}, {"NS": ["10", "9.5"]}, 5, "[9.5,10]", {Decimal(10), Decimal("9.5")}),
    ({"BS": ["AQ==", "AA=="]}, {"BS": [b"\x01", b"\x00"]}, 2, '["AA==","AQ=="]', {Binary(b"\x00"), Binary(b"\x01")}),
    ({"M": {"a": {"N": "1"}}}, {"M": {"a": {"N": "1"}}}, 3 + 1 + 1 + 2, '{"a":1}', {"a": Decimal(1)}),
    ({"L": [{"S": "a"}, {"B": "AA=="}]}, {"L": [{"S": "a"}, {"B": b"\x00"}]}, 3 + 2 + 1 + 1, '["a","AA=="]',
     ["a", Binary(b"\x00")]),
]  # fmt: skip


@pytest.mark.parametrize(("sent", "client", "size", "text", "python"), TYPES, ids=[str(t[0])[:30] for t in TYPES])
def test_every_type_follows_its_row_in_every_walk(
    sent: dict[str, Any], client: dict[str, Any], size: int, text: str, python: Any
) -> None:
    # GIVEN a value as Lambda delivers it
    # WHEN it is checked, sized, rendered and deserialized
    checked = client_value(sent)
    # THEN each walk follows the type's row
    assert checked == client
    assert item_size({"v": checked}) == len("v") + size
    assert item_json({"v": checked}) == '{"v":' + text + "}"
    assert deserialize_image({"v": checked}) == {"v": python}
    assert same_value(checked, client_value(sent))


def test_numbers_render_digit_for_digit_never_through_float() -> None:
    rendered = item_json({"f": {"N": "0.1"}, "big": {"N": "12345678901234567890123456789012345678"}})
    assert rendered == '{"f":0.1,"big":12345678901234567890123456789012345678}'
    assert json.loads(rendered, parse_float=Decimal)["f"] == Decimal("0.1")


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"N": "one"}, "N value is not a number"),
        ({"N": "١٢"}, "N value is not a number"),  # digits, but not ASCII ones
        ({"N": 12}, "N value is not a number"),
        ({"S": 5}, "S value is not a string"),
        ({"B": "!!"}, "B value is not base64"),
        ({"BOOL": "true"}, "BOOL value is not true or false"),
        ({"NULL": False}, "NULL value is not true"),
        ({"SS": []}, "SS value is not a non-empty list"),
        ({"NS": ["1", "x"]}, "N value is not a number"),
        ({"M": []}, "M value is not a map"),
        ({"L": {}}, "L value is not a list"),
        ({"X": "1"}, "unknown AttributeValue type 'X'"),
        ({"S": "a", "N": "1"}, "one type tag"),
        ("text", "one type tag"),
        ({"M": {"inner": {"N": "x"}}}, "attribute 'inner': N value is not a number"),
    ],
)
def test_malformed_values_raise_an_error_that_names_what_is_wrong(bad: Any, reason: str) -> None:
    with pytest.raises(BadAttributeValue, match=reason):
        client_value(bad)


def test_a_bad_attribute_of_an_image_is_named() -> None:
    with pytest.raises(BadAttributeValue, match="attribute 'price': N value is not a number"):
        client_image({"key": {"S": "K"}, "price": {"N": "cheap"}})


@pytest.mark.parametrize(
    ("left", "right", "same"),
    [
        ({"N": "17"}, {"N": "17.0"}, True),
        ({"N": "17"}, {"N": "017"}, True),
        ({"SS": ["a", "b"]}, {"SS": ["b", "a"]}, True),
        ({"M": {"a": {"N": "1"}, "b": {"S": "x"}}}, {"M": {"b": {"S": "x"}, "a": {"N": "1.0"}}}, True),
        ({"N": "1"}, {"BOOL": True}, False),
        ({"L": [{"N": "1"}]}, {"L": [{"BOOL": True}]}, False),
        ({"L": [{"N": "1"}, {"N": "2"}]}, {"L": [{"N": "2"}, {"N": "1"}]}, False),  # lists keep order
        ({"S": "17"}, {"N": "17"}, False),
        ({"N": "1"}, {"N": "2"}, False),
    ],
)
def test_same_value_compares_dynamodb_values_not_wire_forms(left: Any, right: Any, same: bool) -> None:
    assert same_value(left, right) is same


def test_item_size_follows_dynamodb_rules() -> None:
    # names and strings count their UTF-8 bytes; maps add 3 bytes and a byte per member
    assert item_size({"key": {"S": "ab"}}) == 5
    assert item_size({"m": {"M": {"x": {"S": "é"}}}}) == 1 + 3 + 1 + 1 + 2


def test_nesting_deeper_than_dynamodb_allows_is_refused() -> None:
    value: dict[str, Any] = {"S": "leaf"}
    for _ in range(31):
        value = {"L": [value]}
    assert client_image({"deep": value})  # 32 levels: the limit itself
    with pytest.raises(BadAttributeValue, match="32 levels"):
        client_image({"deep": {"L": [value]}})
