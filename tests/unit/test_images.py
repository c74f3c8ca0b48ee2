"""The image deserializer and the item-size arithmetic."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import Binary

from chalicelib.images import (
    BadAttributeValue,
    deserialize_image,
    item_size,
    same_value,
    to_python,
    value_size,
)


@pytest.mark.parametrize(
    ("value", "python"),
    [
        ({"S": "x"}, "x"),
        ({"N": "3600"}, Decimal("3600")),
        ({"N": "0.1"}, Decimal("0.1")),
        ({"N": "12345678901234567890123456789012345678"}, Decimal("12345678901234567890123456789012345678")),
        ({"B": "AAEC"}, Binary(b"\x00\x01\x02")),
        ({"B": b"\x00"}, Binary(b"\x00")),
        ({"BOOL": False}, False),
        ({"NULL": True}, None),
        ({"M": {"a": {"N": "1"}}}, {"a": Decimal("1")}),
        ({"L": [{"S": "a"}, {"BOOL": True}]}, ["a", True]),
        ({"SS": ["a", "b"]}, {"a", "b"}),
        ({"NS": ["1", "0.1"]}, {Decimal("1"), Decimal("0.1")}),
        ({"BS": ["AA==", "AQ=="]}, {Binary(b"\x00"), Binary(b"\x01")}),
    ],
)
def test_every_dynamodb_type_converts_exactly(value: dict[str, Any], python: Any) -> None:
    assert to_python(value) == python
    assert type(to_python(value)) is type(python)


def test_numbers_keep_their_exact_decimal_digits() -> None:
    assert str(to_python({"N": "0.1"})) == "0.1"
    assert str(to_python({"N": "3600"})) == "3600"


def test_whole_image_deserializes() -> None:
    assert deserialize_image({"key": {"S": "K"}, "value": {"N": "1"}}) == {"key": "K", "value": 1}


@pytest.mark.parametrize("bad", [{"N": "one"}, {"X": "1"}, {"S": "a", "N": "1"}, "text", {"B": "!!"}])
def test_malformed_values_raise_a_named_error(bad: Any) -> None:
    with pytest.raises(BadAttributeValue):
        to_python(bad)


def test_same_value_ignores_set_order_but_not_type() -> None:
    assert same_value({"SS": ["a", "b"]}, {"SS": ["b", "a"]})
    assert not same_value({"N": "1"}, {"BOOL": True})
    assert not same_value({"L": [{"N": "1"}]}, {"L": [{"BOOL": True}]})
    assert not same_value({"N": "1"}, {"N": "2"})


def test_item_size_follows_dynamodb_rules() -> None:
    # names and strings count their UTF-8 bytes; maps add 3 bytes and a byte per member
    assert item_size({"key": {"S": "ab"}}) == 5
    assert item_size({"m": {"M": {"x": {"S": "é"}}}}) == 1 + 3 + 1 + 1 + 2
    assert value_size({"BOOL": True}) == 1


def test_nesting_deeper_than_dynamodb_allows_is_refused() -> None:
    value: dict[str, Any] = {"S": "leaf"}
    for _ in range(32):
        value = {"L": [value]}
    with pytest.raises(BadAttributeValue, match="32 levels"):
        value_size(value)
