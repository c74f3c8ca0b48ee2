"""An item's key as text (SPEC.md, "Audited tables": Keys), and what entries of any key shape carry."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.audit.keys import BadKey, key_text
from chalicelib.audit.plan import plan_batch
from chalicelib.audit.redaction import Redactor


@pytest.mark.parametrize(
    ("keys", "text"),
    [
        ({"key": {"S": "CACHE_TTL_SEC"}}, "CACHE_TTL_SEC"),
        ({"Id": {"N": "42"}}, "42"),
        ({"Id": {"N": "1.50"}}, "1.5"),
        ({"Id": {"N": "-0.0010"}}, "-0.001"),
        ({"Id": {"N": "1E+2"}}, "100"),
        ({"Id": {"N": "-0"}}, "0"),
        ({"blob": {"B": "AAE="}}, "AAE="),
        ({"blob": {"B": b"\x00\x01"}}, "AAE="),  # as boto3's client holds it
        ({"pk": {"S": "tenant-1"}, "sk": {"S": "flag#dark-mode"}}, '{"pk":"tenant-1","sk":"flag#dark-mode"}'),
        ({"Ver": {"N": "2"}, "Id": {"N": "101.0"}}, '{"Id":101,"Ver":2}'),  # names sorted
        ({"pk": {"S": "été"}, "sk": {"B": "AAE="}}, '{"pk":"été","sk":"AAE="}'),  # not ASCII-escaped
        ({"pk": {"S": 'a"b'}, "sk": {"N": "0.10"}}, '{"pk":"a\\"b","sk":0.1}'),
    ],
)
def test_the_key_as_text_follows_spec(keys: dict[str, Any], text: str) -> None:
    assert key_text(keys) == text


def test_a_key_text_over_2048_bytes_is_its_sha256() -> None:
    text = key_text({"key": {"S": "é" * 1025}})
    assert text.startswith("sha256:") and len(text) == len("sha256:") + 64
    assert key_text({"key": {"S": "é" * 1024}}) == "é" * 1024  # 2,048 bytes: still itself


@pytest.mark.parametrize(
    "keys",
    [{}, [], None, {"a": {"S": "1"}, "b": {"S": "2"}, "c": {"S": "3"}}, {"k": {"BOOL": True}}, {"k": {"S": ""}},
     {"k": {"N": "NaN"}}, {"k": {"N": "ten"}}, {"k": {"B": "!!"}}, {"k": {"B": ""}}, {"k": {"S": "a", "N": "1"}}],
)  # fmt: skip
def test_what_is_no_key_is_refused(keys: Any) -> None:
    with pytest.raises(BadKey):
        key_text(keys)


@given(st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(lambda d: abs(d) < Decimal("1e30")))
def test_equal_numbers_give_equal_text(number: Decimal) -> None:
    spelled = [str(number), f"{number:E}", f"{number:f}0" if "." in f"{number:f}" else f"{number:f}.0"]
    assert len({key_text({"Id": {"N": text}}) for text in spelled}) == 1
    assert "E" not in key_text({"Id": {"N": str(number)}}).upper()


def _record(keys: dict[str, Any], old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"ApproximateCreationDateTime": 1726045348.0, "Keys": keys, "SequenceNumber": "1",
                            "StreamViewType": "NEW_AND_OLD_IMAGES"}  # fmt: skip
    if old is not None:
        body["OldImage"] = old
    if new is not None:
        body["NewImage"] = new
    name = "MODIFY" if old and new else "INSERT" if new else "REMOVE"
    return {"eventID": "e1", "eventName": name, "dynamodb": body}


def test_a_composite_key_makes_entries_with_its_text_and_typed_keys_and_no_entry_of_its_own() -> None:
    keys = {"pk": {"S": "tenant-1"}, "sk": {"N": "7"}}
    old, new = {**keys, "value": {"N": "1"}}, {**keys, "value": {"N": "2"}}
    [entry] = plan_batch({"Records": [_record(keys, old, new)]}).entries
    assert entry["itemKey"] == {"S": '{"pk":"tenant-1","sk":7}'}
    assert entry["itemKeys"] == {"M": keys} and entry["updatedAttribute"] == {"S": "value"}


def test_a_binary_key_is_carried_as_boto3_sends_it() -> None:
    keys = {"blob": {"B": base64.b64encode(b"\x00\xff").decode()}}
    [entry] = plan_batch({"Records": [_record(keys, None, {**keys, "v": {"S": "x"}})]}).entries
    assert entry["itemKey"] == {"S": "AP8="} and entry["itemKeys"] == {"M": {"blob": {"B": b"\x00\xff"}}}


def test_the_seed_tables_entries_carry_no_item_keys() -> None:
    keys = {"key": {"S": "CACHE_TTL_SEC"}}
    [entry] = plan_batch({"Records": [_record(keys, None, {**keys, "value": {"N": "3600"}})]}).entries
    assert "itemKeys" not in entry and entry["itemKey"] == {"S": "CACHE_TTL_SEC"}


def test_key_attributes_are_never_redacted_whatever_their_name() -> None:
    keys = {"tokenId": {"S": "t-1"}}
    record = _record(keys, None, {**keys, "secretValue": {"S": "hunter2"}})
    out = Redactor(("*token*", "*secret*"), lambda: b"k" * 32).event({"Records": [record]})["Records"][0]
    image = out["dynamodb"]["NewImage"]
    assert image["tokenId"] == {"S": "t-1"} and image["secretValue"]["S"].startswith("redacted:")


def test_an_entry_whose_stored_item_keys_are_unreadable_is_joined_by_its_key_text() -> None:
    from chalicelib.actors.attribution import cloudtrail_key

    forged = {"itemKey": {"S": "K"}, "itemKeys": {"S": "not a map"}}
    assert cloudtrail_key(forged) == "K"
    assert cloudtrail_key({"itemKey": {"S": "K"}, "itemKeys": {"M": {"a": {"BOOL": True}}}}) == "K"
