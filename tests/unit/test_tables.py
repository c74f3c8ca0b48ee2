"""Which existing tables provisioning calls auditable: any key schema DynamoDB allows, both images streamed."""

from __future__ import annotations

from typing import Any

import pytest

from infra.tables import key_schema_problem, stream_problem


def described(*keys: tuple[str, str, str], view: str | None = "NEW_AND_OLD_IMAGES") -> dict[str, Any]:
    """A DescribeTable answer: (name, type, HASH|RANGE) keys, a stream view or none."""
    table: dict[str, Any] = {
        "TableName": "Settings",
        "AttributeDefinitions": [{"AttributeName": name, "AttributeType": kind} for name, kind, _ in keys],
        "KeySchema": [{"AttributeName": name, "KeyType": role} for name, _, role in keys],
    }
    if view is not None:
        table["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view}
    return table


@pytest.mark.parametrize("hash_type", ["S", "N", "B"])
@pytest.mark.parametrize("range_type", [None, "S", "N", "B"])
def test_a_hash_key_of_s_n_or_b_with_or_without_a_range_key_can_be_audited(
    hash_type: str, range_type: str | None
) -> None:
    keys = [("Id", hash_type, "HASH")] + ([("Version", range_type, "RANGE")] if range_type else [])
    assert key_schema_problem(described(*keys)) is None


@pytest.mark.parametrize(
    ("keys", "found"),
    [
        ([("Id", "BOOL", "HASH")], "Id (BOOL, hash)"),
        ([("pk", "S", "HASH"), ("sk", "M", "RANGE")], "pk (S, hash), sk (M, range)"),
        ([("sk", "S", "RANGE")], "sk (S, range)"),
        ([], "none"),
    ],
    ids=["a hash key of another type", "a range key of another type", "no hash key", "no key"],
)
def test_a_key_dynamodb_would_not_make_is_refused_by_name(keys: list[tuple[str, str, str]], found: str) -> None:
    assert key_schema_problem(described(*keys)) == (
        f"its key is {found}, and only a hash key of type S, N or B, with or without a range key of S, N or B, "
        "can be audited: take it out of AUDITED_TABLES"
    )


def test_a_range_key_without_its_type_is_refused() -> None:
    table = described(("pk", "S", "HASH"), ("sk", "S", "RANGE"))
    table["AttributeDefinitions"] = table["AttributeDefinitions"][:1]
    assert "sk (?, range)" in (key_schema_problem(table) or "")


@pytest.mark.parametrize(("view", "fit"), [("NEW_AND_OLD_IMAGES", True), ("KEYS_ONLY", False), (None, False)])
def test_only_a_stream_of_both_images_feeds_the_producer_whatever_the_key(view: str | None, fit: bool) -> None:
    table = described(("pk", "S", "HASH"), ("sk", "N", "RANGE"), view=view)
    assert (stream_problem(table) is None) is fit
