"""GET /audit/{key} through chalice.test.Client against moto: order, pages, exact JSON, errors."""

from __future__ import annotations

import base64
import json
import urllib.parse
import warnings
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import Binary
from chalice.test import Client

from tests.conftest import AUDIT, Stack

pytestmark = pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")


def audit(client: Client, event: dict[str, Any]) -> None:
    assert client.lambda_.invoke("audit_producer", event).payload == {"batchItemFailures": []}


def get(client: Client, path: str) -> tuple[int, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        response = client.http.get(path)
    return response.status_code, json.loads(response.body, parse_float=Decimal, parse_int=Decimal)


def history(client: Client, key: str, limit: int) -> list[list[dict[str, Any]]]:
    pages, token = [], None
    for _ in range(100):
        status, body = get(client, f"/audit/{key}?limit={limit}" + (f"&next={token}" if token else ""))
        assert status == 200, body
        pages.append(body["entries"])
        token = body["next"]
        if token is None:
            return pages
    raise AssertionError("pagination never ended")


def test_history_is_newest_first_with_plain_json_values(stack: Stack, client: Client) -> None:
    stack.put("CACHE_TTL_SEC", value=3600)
    stack.put("CACHE_TTL_SEC", value=1800)
    stack.put("OTHER", value=1)
    audit(client, stack.new_event())
    status, body = get(client, "/audit/CACHE_TTL_SEC")
    assert status == 200 and body["next"] is None
    changed, created = body["entries"]
    assert (changed["updatedAttribute"], changed["oldValue"], changed["newValue"]) == ("value", 3600, 1800)
    assert created["newValue"] == {"key": "CACHE_TTL_SEC", "value": 3600}
    assert set(created) == {"id", "itemKey", "modificationTime", "sequenceNumber", "newValue"}


def test_values_render_exactly(stack: Stack, client: Client) -> None:
    big = "12345678901234567890123456789012345678"
    stack.put(
        "TYPES",
        tenth=Decimal("0.1"),
        big=Decimal(big),
        tags={"b", "a"},
        sizes={Decimal(10), Decimal(9)},
        blob=Binary(b"\x00\x01"),
        nothing=None,
    )
    audit(client, stack.new_event())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = client.http.get("/audit/TYPES").body.decode()
    assert '"tenth":0.1' in raw and f'"big":{big}' in raw
    assert '"tags":["a","b"]' in raw and '"sizes":[9,10]' in raw
    assert '"blob":"AAE="' in raw and '"nothing":null' in raw
    assert "Decimal" not in raw


def _same_millisecond(event: dict[str, Any]) -> dict[str, Any]:
    for record in event["Records"]:
        record["dynamodb"]["ApproximateCreationDateTime"] = 1726045348.0
    return event


def test_changes_within_one_millisecond_are_ordered_by_sequence_number(stack: Stack, client: Client) -> None:
    for value in range(6):
        stack.put("BURST", value=value)
    audit(client, _same_millisecond(stack.new_event()))
    [entries] = history(client, "BURST", 50)
    assert {e["modificationTime"] for e in entries} == {"2024-09-11T09:02:28.000Z"}
    sequence = [int(e["sequenceNumber"]) for e in entries]
    assert sequence == sorted(sequence, reverse=True)
    assert [e["newValue"] if "updatedAttribute" in e else e["newValue"]["value"] for e in entries] == [
        5, 4, 3, 2, 1, 0
    ]  # fmt: skip


@pytest.mark.parametrize("same_time", [False, True], ids=["distinct times", "one millisecond"])
@pytest.mark.parametrize("limit", [1, 2, 3, 7, 50])
def test_pages_join_into_the_whole_history_without_gaps_or_repeats(
    stack: Stack, client: Client, limit: int, same_time: bool
) -> None:
    for value in range(11):
        stack.put("PAGED", value=value, note=f"n{value % 3}")
    event = stack.new_event()
    audit(client, _same_millisecond(event) if same_time else event)
    pages = history(client, "PAGED", limit)
    flat = [e["id"] for page in pages for e in page]
    _, whole = get(client, "/audit/PAGED?limit=1000")
    assert flat == [e["id"] for e in whole["entries"]]
    assert len(flat) == len(set(flat)) == len(stack.audit_entries())
    assert all(len(page) <= limit for page in pages)


def test_default_page_is_50(stack: Stack, client: Client) -> None:
    for value in range(60):
        stack.put("MANY", value=value)
    audit(client, stack.new_event())
    assert [len(page) for page in history(client, "MANY", 50)] == [50, 10]
    status, body = get(client, "/audit/MANY")
    assert status == 200
    assert len(body["entries"]) == 50 and body["next"]


def test_unknown_key_is_an_empty_history(stack: Stack, client: Client) -> None:
    assert get(client, "/audit/NEVER_SET") == (200, {"entries": [], "next": None})


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=0", "limit must be a whole number from 1 to 1000, not '0'"),
        ("limit=1001", "limit must be a whole number from 1 to 1000, not '1001'"),
        ("limit=ten", "limit must be a whole number from 1 to 1000, not 'ten'"),
        ("limit=-5", "limit must be a whole number from 1 to 1000"),
        ("limit=²", "limit must be a whole number from 1 to 1000, not '²'"),  # str.isdigit says yes
        ("limit=%D9%A5", "limit must be a whole number from 1 to 1000"),  # an Arabic-Indic five
        ("next=garbage", "next is not a token this API issued"),
        ("next=WzEsMl0=", "next is not a token this API issued"),
    ],
)
def test_bad_parameters_are_a_400_that_says_what_is_wrong(
    stack: Stack, client: Client, query: str, message: str
) -> None:
    status, body = get(client, f"/audit/KEY?{query}")
    assert status == 400 and message in body["Message"]


def test_history_reads_the_index_and_never_scans(stack: Stack, client: Client) -> None:
    from chalicelib import wiring

    calls: list[str] = []
    wiring.client("dynamodb").meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: calls.append(model.name)
    )
    stack.put("K", value=1)
    audit(client, stack.new_event())
    get(client, "/audit/K")
    assert "Scan" not in calls and "Query" in calls


def created_record(key: str, event_id: str, sequence: str) -> dict[str, Any]:
    """An INSERT of ``key`` as Lambda delivers it."""
    return {
        "eventID": event_id,
        "eventName": "INSERT",
        "dynamodb": {
            "ApproximateCreationDateTime": 1726045348.0,
            "Keys": {"key": {"S": key}},
            "NewImage": {"key": {"S": key}, "value": {"N": "1"}},
            "SequenceNumber": sequence,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/audit/plain%20key", "plain key"),
        ("/audit/feature%2Fflag", "feature/flag"),
        ("/audit/%C3%A9t%C3%A9", "été"),
        ("/audit/100%25", "100%"),
        ("/audit/a+b", "a+b"),  # a plus in a path is a plus
        ("/audit/%2525", "%25"),  # decoded once, not twice
    ],
)
def test_the_path_parameter_is_percent_decoded_once_as_utf8(stack: Stack, client: Client, path: str, key: str) -> None:
    # GIVEN histories of the key and of what decoding it twice, or not at all, would give
    decoys = {path.removeprefix("/audit/"), key.replace("%25", "%")}
    records = [created_record(k, f"e{n}", str(n + 1)) for n, k in enumerate([key, *decoys - {key}])]
    audit(client, {"Records": records})
    # WHEN the history is read through the encoded path
    status, body = get(client, path)
    # THEN it is the key's own history and nothing else
    assert status == 200
    assert [entry["itemKey"] for entry in body["entries"]] == [key]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/audit/%ZZ", "key is not percent-encoded: '%' must be followed by two hexadecimal digits"),
        ("/audit/%4z", "key is not percent-encoded"),  # one hex digit is not an escape
        ("/audit/100%", "key is not percent-encoded"),
        ("/audit/%FF", "key is not UTF-8 once percent-decoded"),
        ("/audit/%C3", "key is not UTF-8 once percent-decoded"),
        ("/audit/\ud800", "key is not UTF-8 once percent-decoded"),  # a lone surrogate: no UTF-8 at all
        ("/audit/" + "x" * 2049, "key is longer than 2,048 bytes"),
        ("/audit/" + "%C3%A9" * 1025, "key is longer than 2,048 bytes"),
    ],
)
def test_a_key_that_cannot_be_a_configuration_key_is_a_400_that_says_why(
    stack: Stack, client: Client, path: str, message: str
) -> None:
    status, body = get(client, path)
    assert status == 400 and message in body["Message"]


def test_a_key_of_2048_bytes_is_read(stack: Stack, client: Client) -> None:
    key = "é" * 1024
    audit(client, {"Records": [created_record(key, "e1", "1")]})
    status, body = get(client, "/audit/" + "%C3%A9" * 1024)
    assert status == 200 and [e["itemKey"] for e in body["entries"]] == [key]


def test_a_throttled_read_is_a_503_that_says_try_again(stack: Stack, client: Client) -> None:
    from botocore.exceptions import ClientError

    from chalicelib import wiring

    def throttle(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "Query")

    wiring.client("dynamodb").meta.events.register("before-call.dynamodb.Query", throttle)
    status, body = get(client, "/audit/K")
    assert status == 503 and body["Message"] == "the Audit table is busy; try again"


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "token",
    [
        _b64('["2024-09-11T09:02:28.000Z",Infinity,"value","id"]'),  # the old JSON form, non-finite
        _b64('["2024-09-11T09:02:28.000Z",NaN,"value","id"]'),
        _b64('["2024-09-11T09:02:28.000Z",1e999,"value","id"]'),
        _b64('["2024-09-11T09:02:28.000Z",' + "9" * 5000 + ',"value","id"]'),
        _b64("[" * 5000 + "]" * 5000),  # deep nesting
        _b64('{"a":1,"b":2,"c":3,"d":4}'),
        _b64('["","","",""]'),  # empty strings
        _b64("[1,2,3,4]"),
        ".".join(map(_b64, ["0" * 32, "", "", "", ""])),  # this form, fields empty
        ".".join(map(_b64, ["0" * 32, "2024-09-11T09:02:28.000Z", "1" * 41, "id", "value"])),  # too long a number
        ".".join(map(_b64, ["0" * 32, "2024-09-11T09:02:28.000Z", "-5", "id", "value"])),
        ".".join(map(_b64, ["0" * 32, "x" * 2000, "1", "id", "value"])),  # over the index key's 1,024 bytes
        ".".join(map(_b64, ["0" * 32, "2024-09-11T09:02:28.000Z", "1", "id"])),  # four fields
        ".".join(["AA", "é", "AA", "AA", "AA"]),
        "é",
        "%%%",
        "",
    ],
)
def test_a_forged_next_token_is_a_400_never_a_500(stack: Stack, client: Client, token: str) -> None:
    stack.put("K", value=1)
    audit(client, stack.new_event())
    status, body = get(client, "/audit/K?" + urllib.parse.urlencode({"next": token}))
    if token == "":  # an empty next is no token: the first page
        assert status == 200
        return
    assert status == 400, body
    assert body["Message"] == "next is not a token this API issued"


def test_a_token_of_one_keys_history_is_refused_for_another(stack: Stack, client: Client) -> None:
    # GIVEN two keys with histories of three entries each, and a token of A's
    for value in range(3):
        stack.put("A", value=value)
        stack.put("B", value=value)
    audit(client, stack.new_event())
    status, body = get(client, "/audit/A?limit=1")
    assert status == 200 and body["next"]
    # WHEN it is used to page through B's history
    status, refused = get(client, f"/audit/B?limit=1&next={body['next']}")
    # THEN it is a 400 that says so, and no entry of either key is shown
    assert status == 400 and "another key's history" in refused["Message"]
    # AND it still serves A
    assert get(client, f"/audit/A?limit=1&next={body['next']}")[0] == 200


def test_a_token_of_one_table_is_refused_for_another() -> None:
    from chalicelib.audit.repository import BadPageToken, decode_token, encode_token, token_scope

    position = ("2024-09-11T09:02:28.000Z", 9700002673137973216305, "value", "id")
    token = encode_token(token_scope("Audit", "K"), position)
    assert decode_token(token, token_scope("Audit", "K")) == position
    with pytest.raises(BadPageToken, match="another key's history"):
        decode_token(token, token_scope("FeatureFlagsAudit", "K"))


@pytest.mark.parametrize(
    "created",
    [253402300799.0, 253402300798.999, 0.0],  # 9999-12-31T23:59:59Z, its last milliseconds, 1970
    ids=["last second of 9999", "just before it", "epoch"],
)
def test_an_entry_at_the_edge_of_the_time_format_is_served(stack: Stack, client: Client, created: float) -> None:
    # GIVEN an entry whose actor window would reach past the year 9999 (or before 1970)
    stack.put("EDGE", value=1)
    event = stack.new_event()
    event["Records"][0]["dynamodb"]["ApproximateCreationDateTime"] = created
    audit(client, event)
    # WHEN its history is read THEN it is served like any other
    status, body = get(client, "/audit/EDGE")
    assert status == 200 and len(body["entries"]) == 1


def test_stored_entries_of_any_time_or_shape_are_served(stack: Stack, client: Client) -> None:
    # GIVEN entries written around the producer: the year 0001, an unreadable time, no sequence number
    for number, (time_, sequence) in enumerate(
        [("0001-01-01T00:00:00.000Z", "1"), ("9999-12-31T23:59:59.999Z", "2"), ("garbage", None), ("a\nb.c", "3")]
    ):
        item = {"id": {"S": f"forged-{number}"}, "itemKey": {"S": "ODD"}, "modificationTime": {"S": time_},
                "newValue": {"M": {"key": {"S": "ODD"}}}}  # fmt: skip
        if sequence:
            item["sequenceNumber"] = {"S": sequence}
        stack.dynamodb.put_item(TableName=AUDIT, Item=item)
    # WHEN the key's history is read, a page at a time THEN every entry is served once
    ids = [entry["id"] for page in history(client, "ODD", 1) for entry in page]
    assert sorted(ids) == ["forged-0", "forged-1", "forged-2", "forged-3"]


def test_a_page_stays_under_5_mb_and_next_continues(stack: Stack, client: Client) -> None:
    # GIVEN a key changed 16 times between two 190 KB values: 380 KB an entry, 5.9 MB in all
    big = ["a" * 190_000, "b" * 190_000]
    for number in range(16):
        stack.put("BIG", value=big[number % 2])
    audit(client, stack.new_event())
    # WHEN its history is read 50 entries a page
    pages, token, sizes = [], None, []
    for _ in range(10):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            response = client.http.get("/audit/BIG?limit=50" + (f"&next={token}" if token else ""))
        assert response.status_code == 200
        sizes.append(len(response.body))
        body = json.loads(response.body)
        pages.append([entry["id"] for entry in body["entries"]])
        if (token := body["next"]) is None:
            break
    # THEN no body reaches 5 MB (Lambda answers at most 6 MB), and the pages join into the history
    assert max(sizes) < 5_000_000 and len(pages) == 2
    flat = [entry_id for page in pages for entry_id in page]
    assert len(flat) == len(set(flat)) == 16


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (1, "9999-12-31T23:59:59.999Z"),
        (1, "not a time"),
        (2, "1"),
        (3, "00000000-0000-4000-8000-000000000000"),
        (4, "x"),
    ],
    ids=["time", "garbage time", "sequence number", "id", "attribute"],
)
def test_a_token_altered_by_hand_is_a_400_not_a_page(stack: Stack, client: Client, field: int, value: str) -> None:
    # GIVEN a real token of K's history
    for number in range(3):
        stack.put("K", value=number)
    audit(client, stack.new_event())
    status, body = get(client, "/audit/K?limit=1")
    assert status == 200 and body["next"]
    # WHEN one of its fields is changed, and the token kept well-formed and bound to K
    fields = body["next"].split(".")
    fields[field] = base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")
    status, refused = get(client, "/audit/K?limit=1&next=" + ".".join(fields))
    # THEN it names no entry of K's history: a 400 that says so
    assert status == 400 and "does not name an entry of this history" in refused["Message"]
