"""Redaction rules: which attributes, at what depth, and what a digest reveals (nothing but equality)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from chalicelib.audit.redaction import PREFIX, Redactor
from tests.records import item, record

KEY = b"k" * 32
DIGEST = re.compile(r"^redacted:hmac-sha256:[0-9a-f]{64}$")


def redactor(*patterns: str) -> Redactor:
    return Redactor(patterns or ("*password*", "*secret*", "apiKey"), lambda: KEY)


@pytest.mark.parametrize(
    ("name", "redacted"),
    [("dbPassword", True), ("PASSWORD", True), ("client_secret_v2", True), ("apikey", True), ("APIKEY", True),
     ("apiKeyId", False), ("myapiKey", False), ("value", False), ("passwd", False)],
)  # fmt: skip
def test_attribute_names_match_shell_patterns_in_any_case(name: str, redacted: bool) -> None:
    image = {"key": {"S": "K"}, name: {"S": "hunter2"}}
    out = redactor().image(image)
    assert DIGEST.match(out[name]["S"]) if redacted else out[name] == {"S": "hunter2"}
    assert out["key"] == {"S": "K"}


def test_the_items_own_key_is_never_redacted_even_when_a_pattern_matches_it() -> None:
    out = redactor("*key*").image({"key": {"S": "K"}, "apiKey": {"S": "x"}, "m": {"M": {"key": {"S": "y"}}}})
    assert out["key"] == {"S": "K"}
    assert DIGEST.match(out["apiKey"]["S"]) and DIGEST.match(out["m"]["M"]["key"]["S"])  # a nested "key" is data


def test_nested_map_keys_are_redacted_at_any_depth_and_the_rest_is_kept() -> None:
    image = {
        "key": {"S": "K"},
        "db": {"M": {"host": {"S": "db.local"}, "password": {"S": "hunter2"},
                     "replicas": {"L": [{"M": {"secret": {"N": "42"}, "port": {"N": "5432"}}}]}}},
    }  # fmt: skip
    out = redactor().image(image)["db"]["M"]
    assert out["host"] == {"S": "db.local"}
    assert DIGEST.match(out["password"]["S"])
    replica = out["replicas"]["L"][0]["M"]
    assert DIGEST.match(replica["secret"]["S"]) and replica["port"] == {"N": "5432"}


@pytest.mark.parametrize(
    ("left", "right", "equal"),
    [
        ({"S": "hunter2"}, {"S": "hunter2"}, True),
        ({"N": "1"}, {"N": "1.0"}, True),  # one number, two ways to write it
        ({"N": "0"}, {"N": "-0.00"}, True),
        ({"SS": ["a", "b"]}, {"SS": ["b", "a"]}, True),
        ({"M": {"a": {"S": "x"}, "b": {"N": "2"}}}, {"M": {"b": {"N": "2.0"}, "a": {"S": "x"}}}, True),
        ({"B": "AAEC"}, {"B": "AAEC"}, True),
        ({"S": "hunter2"}, {"S": "hunter3"}, False),
        ({"S": "1"}, {"N": "1"}, False),  # same text, another type
        ({"B": "1234"}, {"N": "1234"}, False),  # the same characters as base64 and as a number
        ({"N": "1"}, {"BOOL": True}, False),
        ({"L": [{"N": "1"}, {"N": "2"}]}, {"L": [{"N": "2"}, {"N": "1"}]}, False),
    ],
)
def test_equal_values_give_equal_digests_and_different_values_different_ones(
    left: dict[str, Any], right: dict[str, Any], equal: bool
) -> None:
    r = redactor()
    assert (r.digest(left) == r.digest(right)) is equal


def test_a_digest_shows_256_bits_and_depends_on_the_key() -> None:
    value = {"S": "hunter2"}
    digest = redactor().digest(value)["S"]
    assert DIGEST.match(digest) and digest.startswith(PREFIX)
    assert Redactor(["*"], lambda: b"another key, 32 bytes long......").digest(value)["S"] != digest


def test_a_malformed_value_under_a_secret_name_is_digested_not_shown() -> None:
    out = redactor().image({"key": {"S": "K"}, "password": {"N": "hunter2-is-not-a-number"}})
    assert DIGEST.match(out["password"]["S"])


def test_a_record_is_redacted_in_both_images_and_keeps_its_other_fields() -> None:
    rec = record("MODIFY", item("K", password={"S": "old"}), item("K", password={"S": "new"}), event_id="e9")
    out = redactor().event({"Records": [rec]})["Records"][0]
    assert out["eventID"] == "e9" and out["dynamodb"]["SequenceNumber"] == rec["dynamodb"]["SequenceNumber"]
    old, new = out["dynamodb"]["OldImage"]["password"], out["dynamodb"]["NewImage"]["password"]
    assert DIGEST.match(old["S"]) and DIGEST.match(new["S"]) and old != new
    assert rec["dynamodb"]["NewImage"]["password"] == {"S": "new"}  # the caller's event is left as it was


def test_unreadable_shapes_are_digested_whole() -> None:
    r = redactor()
    assert DIGEST.match(r.event({"records": ["hunter2"]}))  # still no event: the poison reason stays true
    [out] = r.event({"Records": ["password=hunter2"]})["Records"]
    assert DIGEST.match(out)
    weird = r.event({"Records": [{"eventID": "e", "dynamodb": {"NewImage": ["password", "hunter2"]}}]})
    assert "hunter2" not in str(weird)


def test_the_key_is_read_once_and_before_anything_else() -> None:
    reads: list[int] = []

    def key() -> bytes:
        reads.append(1)
        return KEY

    r = Redactor(["*password*"], key)
    r.event({"Records": []})  # nothing to redact: the key is read anyway, so a bad key fails early
    assert reads == [1]
    r.event({"Records": [record("INSERT", new=item("K", password={"S": "x"}))]})
    assert reads == [1]


def test_without_patterns_nothing_changes_and_no_key_is_needed() -> None:
    event = {"Records": [record("INSERT", new=item("K", password={"S": "x"}))]}
    assert Redactor().event(event) is event


def test_a_record_without_secrets_is_passed_on_as_it_came() -> None:
    plain = record("MODIFY", item("K", value={"N": "1"}, m={"M": {"a": {"S": "x"}}}), item("K", value={"N": "2"}))
    [out] = redactor().event({"Records": [plain]})["Records"]
    assert out is plain  # no copy of a record that holds no secret: a 10,000-record batch stays one batch
    secret = record("INSERT", new=item("K", l={"L": [{"M": {"password": {"S": "x"}}}]}))
    [out] = redactor().event({"Records": [secret]})["Records"]
    assert out is not secret and DIGEST.match(out["dynamodb"]["NewImage"]["l"]["L"][0]["M"]["password"]["S"])


@pytest.mark.parametrize(
    "malformed",
    [
        {"M": {"password": {"S": "hunter2"}}, "S": "two type tags"},
        {"L": [{"password": {"S": "hunter2"}}]},  # an untagged map inside a list
        {"L": [{"M": {"db": {"L": [{"apiKey": {"S": "hunter2"}}]}}}]},  # the same, deeper
        {"S": {"password": "hunter2"}},  # a scalar tag holding an object
        {"SS": [{"secret": "hunter2"}]},
        {"Q": {"password": {"S": "hunter2"}}},  # an unknown tag
    ],
    ids=["two tags", "untagged map in a list", "deeper", "scalar holding a map", "set holding a map", "unknown tag"],
)
def test_a_malformed_value_naming_a_secret_is_replaced_whole_by_its_digest(malformed: dict[str, Any]) -> None:
    out = redactor().image({"key": {"S": "K"}, "config": malformed, "host": {"S": "db.local"}})
    assert "hunter2" not in repr(out)
    assert "redacted:hmac-sha256:" in repr(out["config"])  # the digest's text in the malformed part's place
    assert out["host"] == {"S": "db.local"}


def test_a_malformed_value_naming_no_secret_is_left_as_it_came() -> None:
    malformed = {"L": [{"host": {"S": "db.local"}}], "S": "x"}
    image = {"key": {"S": "K"}, "config": malformed}
    assert redactor().image(image) is image
