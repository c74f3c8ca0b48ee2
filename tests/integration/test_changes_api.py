"""GET /changes through chalice.test.Client against moto: windows, filters, pages across the time
index's shards, actors, bad input, and no Scan."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import urllib.parse
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.actors.cloudtrail import Call
from chalicelib.actors.repository import DynamoDBActorRepository
from chalicelib.audit.entries import Entry, entry_id, sort_key
from chalicelib.audit.repository import TIME_SHARDS, DynamoDBAuditRepository, time_shard
from tests.conftest import ACTORS, AUDIT, CONFIGURATION, Stack, create_keyed_table, project_with

pytestmark = pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")
FLAGS, FLAGS_AUDIT = "FeatureFlags", "FeatureFlagsAudit"
SECOND = "2024-09-11T09:02:28"


def made(key: str, time: str, sequence: int, kind: str = "updated", actor: str | None = None) -> Entry:
    """An entry as the producer writes it: of ``kind``, at ``time``, with a declared actor if given."""
    attribute = "value" if kind == "updated" else None
    entry: Entry = {
        "id": {"S": entry_id(f"{key}#{sequence}", attribute)},
        "itemKey": {"S": key},
        "modificationTime": {"S": time},
        "sequenceNumber": {"S": str(sequence)},
    }
    item = {"M": {"key": {"S": key}, "value": {"N": str(sequence)}}}
    if kind == "created":
        entry["newValue"] = item
    elif kind == "updated":
        entry.update(updatedAttribute={"S": "value"}, oldValue={"N": "1"}, newValue={"N": str(sequence)})
    else:
        entry["oldValue"] = item
        if kind == "expired":
            entry["expired"] = {"BOOL": True}
    if actor is not None:
        entry["declaredActor"] = {"S": actor}
    return entry


def save(dynamodb: Any, entries: list[Entry], trail: str = AUDIT) -> None:
    result = DynamoDBAuditRepository(dynamodb, trail).save(entries)
    assert not result.unwritten and not result.refused


def get(client: Client, path: str) -> tuple[int, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        response = client.http.get(path)
    return response.status_code, json.loads(response.body)


def query(**params: str) -> str:
    return "/changes?" + urllib.parse.urlencode(params)


def every_page(client: Client, **params: str) -> Iterator[list[dict[str, Any]]]:
    token = None
    for _ in range(500):
        status, body = get(client, query(**params, **({"next": token} if token else {})))
        assert status == 200, body
        yield body["entries"]
        token = body["next"]
        if token is None:
            return
    raise AssertionError("paging never ended")


def ids(entries: list[dict[str, Any]]) -> list[str]:
    return [entry["id"] for entry in entries]


WINDOW = {"from": f"{SECOND}Z", "to": "2024-09-11T09:03:00Z"}


def test_the_changes_of_every_key_come_newest_first_each_rendered_as_the_history_renders_it(
    stack: Stack, client: Client
) -> None:
    # GIVEN three keys changed through the stream, and who made one of the changes, from CloudTrail
    stack.put("CACHE_TTL_SEC", value=3600, modifiedBy="deploy-bot")
    stack.put("FEATURE_X", value=True)
    stack.delete("FEATURE_X")
    assert client.lambda_.invoke("audit_producer", stack.new_event()).payload == {"batchItemFailures": []}
    now = dt.datetime.now(dt.UTC)
    [entry] = [e for e in stack.audit_entries() if e["itemKey"] == "FEATURE_X" and "oldValue" in e]
    DynamoDBActorRepository(stack.dynamodb, ACTORS).record(
        [Call("FEATURE_X", entry["modificationTime"][:19] + "Z", "ev-1", "arn:aws:iam::1:user/ana", "IAMUser",
              "DeleteItem", CONFIGURATION)]
    )  # fmt: skip
    # WHEN the last hour's changes are asked for
    status, body = get(client, "/changes")
    # THEN all three come, newest first, each as /audit/{key} renders it, plus its table
    assert status == 200 and body["next"] is None
    entries = body["entries"]
    assert [(e["itemKey"], "newValue" in e, "oldValue" in e) for e in entries] == [
        ("FEATURE_X", False, True),
        ("FEATURE_X", True, False),
        ("CACHE_TTL_SEC", True, False),
    ]
    assert {e["tableName"] for e in entries} == {CONFIGURATION}
    assert entries[0]["actor"] == {"arn": "arn:aws:iam::1:user/ana", "type": "IAMUser", "source": "cloudtrail"}
    assert entries[2]["actor"] == {"arn": "deploy-bot", "type": "Declared", "source": "declared"}
    for change in entries:
        _, history = get(client, "/audit/" + urllib.parse.quote(change["itemKey"], safe=""))
        [same] = [e for e in history["entries"] if e["id"] == change["id"]]
        assert {k: v for k, v in change.items() if k != "tableName"} == same
        assert "timeShard" not in change  # the index's attribute is the repository's, not the entry's
    assert all(now - dt.timedelta(minutes=5) < _time(e) <= now + dt.timedelta(seconds=5) for e in entries)


def _time(entry: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(entry["modificationTime"])


def test_from_is_inclusive_and_to_exclusive_to_the_millisecond(stack: Stack, client: Client) -> None:
    times = ["2024-09-11T09:02:27.999Z", f"{SECOND}.000Z", f"{SECOND}.000Z", f"{SECOND}.001Z", f"{SECOND}.002Z"]
    entries = [made(f"K{n}", time, 100 + n) for n, time in enumerate(times)]
    save(stack.dynamodb, entries)

    def window(start: str, end: str) -> list[str]:
        [page] = list(every_page(client, **{"from": start, "to": end}))
        return [e["itemKey"] for e in page]

    assert window(f"{SECOND}Z", f"{SECOND}.002Z") == ["K3", "K2", "K1"]
    assert window(f"{SECOND}.001Z", f"{SECOND}.002Z") == ["K3"]
    assert window(f"{SECOND}.001Z", f"{SECOND}.001Z") == []  # [t, t) is empty
    # a bound finer than a millisecond: .0005 lies after .000 and before .001
    assert window(f"{SECOND}.0005Z", f"{SECOND}.0015Z") == ["K3"]
    # any zone: 11:02:28+02:00 is 09:02:28Z
    assert window("2024-09-11T11:02:28+02:00", "2024-09-11T11:02:28.001+02:00") == ["K2", "K1"]


def test_each_filter_and_filters_combined(stack: Stack, flags: str, both: Client) -> None:
    save(
        stack.dynamodb,
        [
            made("A", f"{SECOND}.100Z", 1, "created", actor="arn:aws:iam::1:user/ana"),
            made("A", f"{SECOND}.200Z", 2, "updated", actor="arn:aws:iam::1:user/bob"),
            made("B", f"{SECOND}.300Z", 3, "deleted", actor="arn:aws:iam::1:user/ana"),
            made("C", f"{SECOND}.400Z", 4, "expired"),
        ],
    )
    save(stack.dynamodb, [made('{"pk":"t","sk":1}', f"{SECOND}.250Z", 5, "updated", actor="ana")], FLAGS_AUDIT)

    def keys(**filters: str) -> list[tuple[str, str]]:
        found = [e for page in every_page(both, **WINDOW, **filters) for e in page]
        return [(e["tableName"], e["itemKey"]) for e in found]

    assert keys() == [
        ("Configuration", "C"),
        ("Configuration", "B"),
        (FLAGS, '{"pk":"t","sk":1}'),
        ("Configuration", "A"),
        ("Configuration", "A"),
    ]
    assert keys(table=FLAGS) == [(FLAGS, '{"pk":"t","sk":1}')]
    assert keys(table="Configuration") == [("Configuration", k) for k in "CBAA"]
    assert keys(kind="deleted") == [("Configuration", "B")]
    assert keys(kind="expired,created") == [("Configuration", "C"), ("Configuration", "A")]
    assert keys(kind="updated") == [(FLAGS, '{"pk":"t","sk":1}'), ("Configuration", "A")]
    assert keys(actor="ana") == [("Configuration", "B"), (FLAGS, '{"pk":"t","sk":1}'), ("Configuration", "A")]
    assert keys(actor="dynamodb.amazonaws.com") == [("Configuration", "C")]  # the TTL process
    assert keys(actor="user/ana", kind="created,updated") == [("Configuration", "A")]
    assert keys(actor="ana", kind="updated", table=FLAGS) == [(FLAGS, '{"pk":"t","sk":1}')]
    assert keys(actor="carol") == []


@pytest.fixture
def flags(stack: Stack) -> str:
    return create_keyed_table(stack.dynamodb, FLAGS, [("pk", "S"), ("sk", "N")], FLAGS_AUDIT)


@pytest.fixture
def both(tmp_path: Path) -> Client:
    from app import app

    audited = f"{CONFIGURATION}={AUDIT},{FLAGS}={FLAGS_AUDIT}"
    return Client(app, stage_name="dev", project_dir=project_with(tmp_path, AUDITED_TABLES=audited))


def test_pages_have_no_gap_and_no_repeat_across_the_index_shards(stack: Stack, client: Client) -> None:
    # GIVEN 240 entries of one second, many of one millisecond, spread over every shard
    entries = [made(f"K{n % 37}", f"{SECOND}.{n % 7:03d}Z", 1000 + n) for n in range(240)]
    save(stack.dynamodb, entries)
    assert len({time_shard(e["id"]["S"]) for e in entries}) == TIME_SHARDS
    # WHEN they are read 7 at a time
    pages = list(every_page(client, **WINDOW, limit="7"))
    # THEN every entry comes once, in one order: newest first, then by sequence number
    found = [e for page in pages for e in page]
    expected = sorted(entries, key=sort_key, reverse=True)
    assert ids(found) == [e["id"]["S"] for e in expected]
    assert all(len(page) == 7 for page in pages[:-1]) and 1 <= len(pages[-1]) <= 7


def test_the_attributes_of_one_record_page_in_exact_order_whatever_their_shards(stack: Stack, client: Client) -> None:
    # GIVEN 30 records of one second, each changing three attributes: entries sharing time and sequence number
    entries = []
    for n in range(30):
        for attribute in ("alpha", "beta", "gamma"):
            entry = made(f"K{n}", f"{SECOND}.000Z", 500 + n)
            entry["id"] = {"S": entry_id(f"K{n}#{500 + n}", attribute)}
            entry["updatedAttribute"] = {"S": attribute}
            entries.append(entry)
    save(stack.dynamodb, entries)
    # WHEN they are paged 4 at a time, THEN each comes once, ordered by sequence number, then attribute
    found = [e for page in itertools.islice(every_page(client, **WINDOW, limit="4"), 9) for e in page]
    entries = sorted(entries, key=sort_key, reverse=True)[:36]
    assert ids(found) == [e["id"]["S"] for e in entries]
    assert [e["updatedAttribute"] for e in found[:3]] == ["gamma", "beta", "alpha"]


def test_a_filtered_page_may_be_short_and_next_is_null_only_at_the_end(stack: Stack, client: Client) -> None:
    # GIVEN 1,500 changes by a bot, and one by a person, the oldest
    entries = [made("K", f"{SECOND}.000Z", 1, actor="arn:aws:iam::1:user/ana")]
    entries += [made(f"B{n}", f"{SECOND}.{1 + n % 900:03d}Z", 10 + n, actor="bot") for n in range(1500)]
    save(stack.dynamodb, entries)
    # WHEN the person's changes are asked for
    pages = list(every_page(client, **WINDOW, actor="ana", limit="5"))
    # THEN pages before the end may be empty, but the change comes, and the last page says it is the end
    assert [e["itemKey"] for page in pages for e in page] == ["K"]
    assert pages[0] == [] and pages[-1][-1]["itemKey"] == "K"  # a page looks at 1,000 index items at most


def test_without_from_and_to_the_pages_keep_the_window_of_the_first(stack: Stack, client: Client) -> None:
    now = dt.datetime.now(dt.UTC)

    def at(moment: dt.datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

    recent = [made(f"R{n}", at(now - dt.timedelta(minutes=n + 1)), 100 + n) for n in range(5)]
    old = [made("OLD", at(now - dt.timedelta(minutes=61)), 1)]
    save(stack.dynamodb, recent + old)
    pages = list(every_page(client, limit="2"))
    assert [e["itemKey"] for page in pages for e in page] == ["R0", "R1", "R2", "R3", "R4"]


def test_a_page_stays_under_five_megabytes_and_next_resumes_after_what_fitted(stack: Stack, client: Client) -> None:
    big = "x" * 350_000
    entries = [made(f"K{n}", f"{SECOND}.{n:03d}Z", 10 + n) for n in range(20)]
    for entry in entries:
        entry["newValue"] = {"S": big}
    save(stack.dynamodb, entries)
    sizes, found = [], []
    token = None
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            response = client.http.get(query(**WINDOW, limit="20", **({"next": token} if token else {})))
        sizes.append(len(response.body))
        body = json.loads(response.body)
        found += ids(body["entries"])
        token = body["next"]
        if token is None:
            break
    assert max(sizes) < 5_000_000 and len(sizes) == 2
    assert found == [e["id"]["S"] for e in sorted(entries, key=sort_key, reverse=True)]


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"from": "yesterday"}, "from 'yesterday' is not an ISO 8601 time"),
        ({"from": "2024-09-11T09:00:00"}, "has no zone"),
        ({"to": "0001-01-01T00:00:00+01:00"}, "outside the times the trail holds"),
        ({"from": "2024-09-11T10:00:00Z", "to": "2024-09-11T09:00:00Z"}, "is after to"),
        ({"kind": "changed"}, "kind 'changed' is not one of created, updated, deleted, expired"),
        ({"kind": "created,"}, "kind '' is not one of"),
        ({"actor": ""}, "actor is empty"),
        ({"table": "Nope"}, "Nope"),
        ({"table": ""}, "table is empty"),
        ({"limit": "0"}, "limit must be a whole number from 1 to 1000"),
        ({"limit": "1e3"}, "limit must be a whole number"),
        ({"since": "1h"}, "unknown parameter 'since'"),
        ({"next": "abc"}, "next is not a token this API issued"),
        ({"next": "e30." + "IQ." * 5 + "e30"}, "next is not a token this API issued"),  # a window of "!"
        ({"from": "2024-09-11T09:00:00 02:00"}, "write an offset's + as %2B"),
        ({"next": "e30." * 6 + "e30"}, "next is not a token this API issued"),  # a window of "{}"
    ],
)
def test_every_bad_input_is_a_400_that_says_why(
    stack: Stack, client: Client, params: dict[str, str], says: str
) -> None:
    status, body = get(client, query(**params))
    assert status == 400 and says in body["Message"], body


@pytest.mark.parametrize("repeated", ["table=Configuration&table=Configuration", "kind=created&kind=deleted"])
def test_a_parameter_given_twice_is_a_400_not_the_last_one_silently(
    stack: Stack, client: Client, repeated: str
) -> None:
    status, body = get(client, "/changes?" + repeated)
    assert status == 400 and "is given more than once" in body["Message"], body


def test_a_token_is_good_only_for_the_query_that_issued_it(stack: Stack, client: Client) -> None:
    save(stack.dynamodb, [made(f"K{n}", f"{SECOND}.{n:03d}Z", 10 + n, actor="ana") for n in range(3)])
    status, body = get(client, query(**WINDOW, limit="1"))
    token = body["next"]
    assert status == 200 and token
    for other in ({"actor": "ana"}, {"kind": "updated"}, {"to": "2024-09-11T09:04:00Z"}, {"table": CONFIGURATION}):
        status, refused = get(client, query(**{**WINDOW, **other}, limit="1", next=token))
        assert status == 400 and "another query" in refused["Message"], other
    status, resumed = get(client, query(**WINDOW, limit="1", next=token))
    assert status == 200 and resumed["entries"][0]["itemKey"] == "K1"


def test_a_window_is_read_through_the_time_index_never_a_scan(stack: Stack, client: Client) -> None:
    save(stack.dynamodb, [made(f"K{n}", f"{SECOND}.{n:03d}Z", 10 + n) for n in range(30)])
    calls: Counter[str] = Counter()
    from chalicelib import wiring

    def count(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    wiring.client("dynamodb").meta.events.register("before-call.dynamodb.*", count)
    status, body = get(client, query(**WINDOW))
    assert status == 200 and len(body["entries"]) == 30
    assert calls["Scan"] == 0
    assert set(calls) == {"Query", "BatchGetItem"}
    # one Query per shard (a few index items each), one BatchGetItem, and AuditActors once per key
    assert calls["BatchGetItem"] == 1 and calls["Query"] == TIME_SHARDS + 30


def test_a_page_of_a_burst_reads_a_few_index_items_per_shard_not_the_whole_second(stack: Stack, client: Client) -> None:
    # GIVEN 800 entries of one second (the stream's times are whole seconds): 50 a shard
    save(stack.dynamodb, [made(f"K{n}", f"{SECOND}.000Z", 10 + n) for n in range(800)])
    index_queries: list[int] = []
    from chalicelib import wiring

    def count(params: dict[str, Any], **_: Any) -> None:
        if params.get("IndexName") == "timeShard-timeOrder-index":
            index_queries.append(1)

    wiring.client("dynamodb").meta.events.register("before-parameter-build.dynamodb.Query", count)
    # WHEN the first page of 10 is read
    status, body = get(client, query(**WINDOW, limit="10"))
    # THEN one Query a shard did it: the index orders the second by sequence number
    assert status == 200 and len(body["entries"]) == 10
    assert len(index_queries) == TIME_SHARDS


def test_a_pages_actor_reads_span_its_entries_times_not_the_whole_window(stack: Stack, client: Client) -> None:
    # GIVEN a key written 200 times over two days (CloudTrail recorded each call), and one entry of it
    calls = [
        Call("K", f"2024-09-{10 + n % 2:02d}T{n % 24:02d}:{n % 60:02d}:00Z", f"ev-{n}", "arn:aws:iam::1:user/bot",
             "IAMUser", "PutItem", CONFIGURATION)
        for n in range(200)
    ]  # fmt: skip
    DynamoDBActorRepository(stack.dynamodb, ACTORS).record(calls)
    save(stack.dynamodb, [made("K", "2024-09-11T09:02:28.000Z", 1)])
    read: list[int] = []
    from chalicelib import wiring

    def count(model: Any, parsed: Any, **_: Any) -> None:
        if model.name == "Query" and parsed.get("Items") and "eventKey" in parsed["Items"][0]:
            read.append(len(parsed["Items"]))

    wiring.client("dynamodb").meta.events.register("after-call.dynamodb.Query", count)
    # WHEN a window of years holding that one entry is read
    status, body = get(client, query(**{"from": "2024-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}))
    # THEN only the calls within 2 s of the entry are read (the one at 09:02:00 is not)
    assert status == 200 and len(body["entries"]) == 1
    assert sum(read) == 0 and "actor" not in body["entries"][0]


def test_a_burst_of_ten_thousand_entries_in_one_second_keeps_every_index_partition_under_its_limit() -> None:
    # DynamoDB gives an index about 1,000 write units a second per partition key value
    per_shard = Counter(time_shard(entry_id(f"burst-{n}")) for n in range(10_000))
    assert len(per_shard) == TIME_SHARDS
    assert max(per_shard.values()) < 750  # 625 on average


def test_the_default_window_is_the_last_hour(stack: Stack, client: Client) -> None:
    assert get(client, "/changes")[1] == {"entries": [], "next": None}
    entry = made("K", "2024-09-11T09:02:28.000Z", 1)
    save(stack.dynamodb, [entry])
    assert get(client, "/changes")[1]["entries"] == []  # not in the last hour
    assert [e["id"] for e in get(client, query(**WINDOW))[1]["entries"]] == [entry["id"]["S"]]
