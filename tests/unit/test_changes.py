"""The pure change -> entries step: shapes, ids, times and poison records, with no AWS at all."""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

import pytest

from chalicelib.audit.entries import entry_id
from chalicelib.audit.plan import changes_for_record, plan_batch
from chalicelib.audit.records import PoisonRecord, format_time
from tests.conftest import seed_event
from tests.records import TTL, item, record

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def entries(rec: dict[str, Any]) -> list[dict[str, Any]]:
    return changes_for_record(rec).entries


def test_seed_event_gives_exactly_the_entry_the_spec_states() -> None:
    # GIVEN the literal event of SPEC.md (note the prefixed table name in its ARN)
    # WHEN it is planned
    plan = plan_batch(seed_event())
    # THEN exactly one entry, field for field
    [entry] = plan.entries
    assert UUID4.match(entry.pop("id")["S"])
    assert entry == {
        "itemKey": {"S": "CACHE_TTL_SEC"},
        "modificationTime": {"S": "2024-09-11T09:02:28.000Z"},
        "sequenceNumber": {"S": "9700002673137973216305"},
        "newValue": {"M": {"value": {"N": "3600"}, "key": {"S": "CACHE_TTL_SEC"}}},
    }
    assert plan.poison == []


def test_insert_records_the_whole_new_item() -> None:
    new = item(value={"N": "3600"}, description={"S": "cache lifetime"})
    [entry] = entries(record("INSERT", new=new))
    assert entry["newValue"] == {"M": new}
    assert "oldValue" not in entry and "updatedAttribute" not in entry


def test_modify_records_one_entry_per_changed_attribute_in_name_order() -> None:
    old = item(value={"N": "3600"}, description={"S": "a"}, owner={"S": "ops"})
    new = item(value={"N": "1800"}, description={"S": "b"}, owner={"S": "ops"})
    got = entries(record("MODIFY", old, new))
    assert [(e["updatedAttribute"], e["oldValue"], e["newValue"]) for e in got] == [
        ({"S": "description"}, {"S": "a"}, {"S": "b"}),
        ({"S": "value"}, {"N": "3600"}, {"N": "1800"}),
    ]


def test_added_attribute_has_no_old_value_and_removed_has_no_new_value() -> None:
    old = item(value={"N": "1"}, retired={"S": "x"})
    new = item(value={"N": "1"}, added={"NULL": True})
    added, retired = entries(record("MODIFY", old, new))
    assert added["updatedAttribute"] == {"S": "added"}
    assert added["newValue"] == {"NULL": True} and "oldValue" not in added
    assert retired["updatedAttribute"] == {"S": "retired"}
    assert retired["oldValue"] == {"S": "x"} and "newValue" not in retired


def test_modify_that_changes_nothing_gives_no_entry() -> None:
    same = item(value={"N": "1"}, tags={"SS": ["a", "b"]})
    assert entries(record("MODIFY", same, copy.deepcopy(same))) == []


@pytest.mark.parametrize(
    ("before", "after", "changed"),
    [
        ({"N": "17"}, {"N": "017"}, False),  # one number, two ways to write it
        ({"N": "17"}, {"N": "17.0"}, False),
        ({"N": "0"}, {"N": "0.0"}, False),
        ({"N": "17"}, {"N": "71"}, True),
        ({"N": "0"}, {"N": "10"}, True),
        ({"N": "17"}, {"S": "17"}, True),  # same text, another type
        ({"S": "17"}, {"N": "17"}, True),
        ({"S": "a"}, {"S": "b"}, True),
    ],
)
def test_a_number_written_another_way_is_not_a_change(
    before: dict[str, Any], after: dict[str, Any], changed: bool
) -> None:
    found = entries(record("MODIFY", item(v=before), item(v=after)))
    assert [e["updatedAttribute"]["S"] for e in found] == (["v"] if changed else [])


def test_malformed_values_are_named_with_their_image_and_attribute() -> None:
    for bad, reason in (({"N": "12a"}, "N value is not a number"), ({"S": 5}, "S value is not a string")):
        with pytest.raises(PoisonRecord, match=f"bad attribute value in NewImage: attribute 'v': {reason}"):
            changes_for_record(record("MODIFY", item(v={"N": "1"}), item(v=bad)))


def test_set_order_is_not_a_change_but_a_type_change_is() -> None:
    old = item(tags={"SS": ["a", "b"]}, flag={"N": "1"})
    new = item(tags={"SS": ["b", "a"]}, flag={"BOOL": True})
    [changed] = entries(record("MODIFY", old, new))
    assert changed["updatedAttribute"] == {"S": "flag"}


def test_remove_records_the_whole_old_item() -> None:
    old = item(value={"N": "1800"})
    [entry] = entries(record("REMOVE", old=old))
    assert entry["oldValue"] == {"M": old}
    assert "newValue" not in entry and "expired" not in entry


def test_ttl_deletion_is_audited_and_marked_expired() -> None:
    [entry] = entries(record("REMOVE", old=item(value={"N": "1"}), userIdentity=TTL))
    assert entry["expired"] == {"BOOL": True}
    assert entry["oldValue"] == {"M": item(value={"N": "1"})}


def test_removal_by_a_person_is_not_marked_expired() -> None:
    person = {"type": "Service", "principalId": "someone.example.com"}
    [entry] = entries(record("REMOVE", old=item(value={"N": "1"}), userIdentity=person))
    assert "expired" not in entry


def test_entry_carries_no_attribute_beyond_the_spec() -> None:
    allowed = {"id", "itemKey", "modificationTime", "sequenceNumber", "updatedAttribute",
               "oldValue", "newValue", "expired", "declaredActor"}  # fmt: skip
    got = entries(record("MODIFY", item(a={"N": "1"}), item(a={"N": "2"}), userIdentity=TTL))
    got += entries(record("REMOVE", old=item(a={"N": "1"}), userIdentity=TTL))
    assert all(set(entry) <= allowed for entry in got)


def test_ids_are_version_4_format_and_derived_from_event_id_and_attribute() -> None:
    first = entries(record("MODIFY", item(a={"N": "1"}, b={"N": "1"}), item(a={"N": "2"}, b={"N": "2"})))
    again = entries(record("MODIFY", item(a={"N": "1"}, b={"N": "1"}), item(a={"N": "2"}, b={"N": "2"})))
    other = entries(record("MODIFY", item(a={"N": "1"}), item(a={"N": "2"}), event_id="e2"))
    ids = [e["id"]["S"] for e in first]
    assert all(UUID4.match(i) and uuid.UUID(i).version == 4 for i in ids)
    assert ids == [e["id"]["S"] for e in again]  # redelivery overwrites, never duplicates
    assert len(set(ids)) == 2
    assert other[0]["id"]["S"] not in ids


def test_entry_id_equals_a_uuid4_built_from_the_digest() -> None:
    import hashlib

    expected = uuid.UUID(bytes=hashlib.blake2b(b"abc\x1fvalue", digest_size=16).digest(), version=4)
    assert entry_id("abc", "value") == str(expected)


@pytest.mark.parametrize(
    ("epoch", "formatted"),
    [
        (1726045348.0, "2024-09-11T09:02:28.000Z"),
        (1726045348, "2024-09-11T09:02:28.000Z"),
        (1726045348.123, "2024-09-11T09:02:28.123Z"),
        (1726045348.9996, "2024-09-11T09:02:29.000Z"),
        (0, "1970-01-01T00:00:00.000Z"),
    ],
)
def test_modification_time_comes_from_the_record(epoch: float, formatted: str) -> None:
    [entry] = entries(record("INSERT", new=item(v={"N": "1"}), created=epoch))
    assert entry["modificationTime"] == {"S": formatted}
    assert format_time(float(epoch)) == formatted


def test_a_boolean_time_is_poison_even_beside_the_equal_number() -> None:
    # True == 1 in Python: the check must look at the type, not the value
    first = record("INSERT", new=item("A", v={"N": "1"}), event_id="a", sequence="1", created=1)
    boolean = record("INSERT", new=item("C", v={"N": "1"}), event_id="c", sequence="3", created=True)
    plan = plan_batch({"Records": [first, boolean]})
    assert [e["modificationTime"]["S"] for e in plan.entries] == ["1970-01-01T00:00:01.000Z"]
    assert [r.event_id for r in plan.poison] == ["c"]
    assert "is not epoch seconds: True" in plan.poison[0].reason


def test_entries_share_no_attribute_value_objects() -> None:
    # an entry changed after planning (a redaction, a fake) must never change its neighbours
    a = record("INSERT", new=item("A", v={"N": "1"}), event_id="a", sequence="1")
    b = record("INSERT", new=item("B", v={"N": "1"}), event_id="b", sequence="2")
    first, second = plan_batch({"Records": [a, b]}).entries
    assert all(first[name] is not second[name] for name in ("modificationTime", "sequenceNumber"))


def test_sequence_number_is_carried_as_the_records_decimal_string() -> None:
    [entry] = entries(record("INSERT", new=item(v={"N": "1"}), sequence="9700002673137973216305"))
    assert entry["sequenceNumber"] == {"S": "9700002673137973216305"}


def test_attribute_values_pass_through_unchanged_for_every_type() -> None:
    values: dict[str, dict[str, Any]] = {
        "s": {"S": "text"},
        "n": {"N": "12345678901234567890123456789012345678"},
        "f": {"N": "0.1"},
        "b": {"B": "AAEC"},
        "t": {"BOOL": True},
        "z": {"NULL": True},
        "m": {"M": {"inner": {"N": "1"}}},
        "l": {"L": [{"S": "x"}, {"N": "2"}]},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2.5"]},
        "bs": {"BS": ["AA==", "AQ=="]},
    }
    # binary arrives as base64 text and leaves as bytes, the form boto3's client sends
    sent = {**values, "b": {"B": b"\x00\x01\x02"}, "bs": {"BS": [b"\x00", b"\x01"]}}
    [created] = entries(record("INSERT", new=item(**values)))
    assert created["newValue"] == {"M": item(**sent)}
    changed = entries(record("MODIFY", item(), item(**values)))
    assert {e["updatedAttribute"]["S"]: e["newValue"] for e in changed} == sent


def test_nested_binary_is_decoded() -> None:
    nested = item(m={"M": {"l": {"L": [{"B": "AQ=="}, {"S": "x"}]}}})
    [entry] = entries(record("INSERT", new=nested))
    assert entry["newValue"]["M"]["m"] == {"M": {"l": {"L": [{"B": b"\x01"}, {"S": "x"}]}}}


POISON = [
    ("KEYS_ONLY stream", {"eventName": "MODIFY", "dynamodb": {"StreamViewType": "KEYS_ONLY", "OldImage": None, "NewImage": None}}, "no OldImage (stream view type KEYS_ONLY)"),
    ("INSERT without image", {"eventName": "INSERT", "dynamodb": {"NewImage": None}}, "no NewImage"),
    ("REMOVE without image", {"eventName": "REMOVE", "dynamodb": {"OldImage": None}}, "no OldImage"),
    ("unknown event name", {"eventName": "UPSERT"}, "unknown eventName 'UPSERT'"),
    ("no key attribute", {"dynamodb": {"Keys": {}, "NewImage": {"value": {"N": "1"}}}}, "record has no usable Keys"),
    ("three key attributes", {"dynamodb": {"Keys": {"a": {"S": "1"}, "b": {"S": "2"}, "c": {"S": "3"}}}}, "one or two key attributes"),
    ("a key of type BOOL", {"dynamodb": {"Keys": {"key": {"BOOL": True}}}}, "is not of type S, N or B"),
    ("Keys and image disagree", {"dynamodb": {"Keys": {"key": {"N": "1"}}}}, "the image's key attribute 'key' differs from Keys"),
    ("no eventID", {"eventID": None}, "no eventID"),
    ("no time", {"dynamodb": {"ApproximateCreationDateTime": None}}, "record has no dynamodb.ApproximateCreationDateTime"),
    ("time in milliseconds", {"dynamodb": {"ApproximateCreationDateTime": 1726045348000}}, "looks like milliseconds, not seconds"),
    ("a time that rounds into the year 10000", {"dynamodb": {"ApproximateCreationDateTime": 253402300799.9996}}, "out of range"),
    ("a sequence number of 41 digits", {"dynamodb": {"SequenceNumber": "1" * 41}}, "no decimal dynamodb.SequenceNumber"),
    ("time as text", {"dynamodb": {"ApproximateCreationDateTime": "yesterday"}}, "ApproximateCreationDateTime is not epoch seconds"),
    ("image not a map", {"dynamodb": {"NewImage": ["x"]}}, "NewImage is not a map"),
    ("no dynamodb", {"dynamodb": None}, "no 'dynamodb' object"),
    ("binary not base64", {"dynamodb": {"NewImage": {"key": {"S": "CACHE_TTL_SEC"}, "b": {"B": "!!"}}}}, "B value is not base64"),
]  # fmt: skip


def _patched(patch: dict[str, Any]) -> dict[str, Any]:
    base = record("INSERT", new=item(value={"N": "1"}))
    for name, value in patch.items():
        if name == "dynamodb" and isinstance(value, dict):
            for inner, inner_value in value.items():
                if inner_value is None:
                    base["dynamodb"].pop(inner, None)
                else:
                    base["dynamodb"][inner] = inner_value
        elif value is None:
            base.pop(name, None)
        else:
            base[name] = value
    return base


@pytest.mark.parametrize(("case", "patch", "reason"), POISON, ids=[c[0] for c in POISON])
def test_poison_records_are_rejected_with_a_reason_and_the_rest_is_kept(
    case: str, patch: dict[str, Any], reason: str
) -> None:
    good = record("INSERT", new=item("GOOD", v={"N": "1"}), event_id="good", sequence="200")
    plan = plan_batch({"Records": [_patched(patch), good]})
    assert [r.event_id for r in plan.records] == ["good"]
    [poison] = plan.poison
    assert reason in poison.reason


def test_entry_over_the_item_limit_is_poison() -> None:
    huge = item(value={"S": "x" * 409_500})  # fits the Configuration item, not the entry around it
    rec = record("INSERT", new=huge)
    rec["dynamodb"]["SizeBytes"] = 409_520
    with pytest.raises(PoisonRecord, match="over DynamoDB's 409600-byte item limit"):
        changes_for_record(rec)


def test_item_just_under_the_limit_is_audited() -> None:
    rec = record("INSERT", new=item(value={"S": "x" * 400_000}))
    rec["dynamodb"]["SizeBytes"] = 400_020
    assert len(entries(rec)) == 1


def test_event_without_records_is_rejected_not_crashed() -> None:
    plan = plan_batch({"records": []})
    assert plan.entries == [] and "no 'Records' list" in plan.poison[0].reason


def test_records_are_planned_in_sequence_order_compared_as_integers() -> None:
    late = record("INSERT", new=item("B", v={"N": "1"}), event_id="b", sequence="1000")
    early = record("INSERT", new=item("A", v={"N": "1"}), event_id="a", sequence="999")
    plan = plan_batch({"Records": [late, early]})
    assert [r.sequence_number for r in plan.records] == ["999", "1000"]


@pytest.mark.parametrize(
    "delivered",
    [
        ["998", "0997"],  # a leading zero: longer text, smaller number
        ["0998", "999", "1000"],
        ["5", "4", "6"],
        ["10", "10", "11"],  # ties keep delivery order
        ["1", "2", "3"],
    ],
)
def test_planned_order_is_integer_order_whatever_the_delivery(delivered: list[str]) -> None:
    records = [
        record("INSERT", new=item(f"K{n}", v={"N": "1"}), event_id=f"e{n}", sequence=sequence)
        for n, sequence in enumerate(delivered)
    ]
    plan = plan_batch({"Records": records})
    expected = sorted(range(len(delivered)), key=lambda n: int(delivered[n]))
    assert [r.event_id for r in plan.records] == [f"e{n}" for n in expected]


def test_a_record_delivered_twice_in_one_batch_is_audited_once() -> None:
    rec = record("INSERT", new=item(v={"N": "1"}))
    plan = plan_batch({"Records": [rec, copy.deepcopy(rec)]})
    assert len(plan.entries) == 1 and plan.duplicates == ["e1"]


BOT = {"S": "deploy-bot@example.com"}


def test_the_writers_stamp_is_kept_as_the_declared_actor_of_a_creation_and_a_change() -> None:
    [created] = entries(record("INSERT", new=item(value={"N": "1"}, modifiedBy=BOT)))
    assert created["declaredActor"] == BOT and created["newValue"]["M"]["modifiedBy"] == BOT
    [changed] = entries(record("MODIFY", item(value={"N": "1"}), item(value={"N": "2"}, modifiedBy=BOT)))
    assert changed["updatedAttribute"] == {"S": "value"} and changed["declaredActor"] == BOT


def test_a_write_that_only_restamps_the_item_is_no_entry() -> None:
    old = item(value={"N": "1"}, modifiedBy={"S": "alice"})
    assert entries(record("MODIFY", old, item(value={"N": "1"}, modifiedBy=BOT))) == []


def test_a_deletion_never_takes_the_stamp_it_names_the_last_writer_not_the_deleter() -> None:
    [removed] = entries(record("REMOVE", old=item(value={"N": "1"}, modifiedBy=BOT)))
    assert "declaredActor" not in removed


@pytest.mark.parametrize("stamp", [{"N": "7"}, {"S": ""}, {"NULL": True}, {"L": [{"S": "x"}]}])
def test_a_stamp_that_is_not_a_string_declares_nobody(stamp: dict[str, Any]) -> None:
    [created] = entries(record("INSERT", new=item(value={"N": "1"}, modifiedBy=stamp)))
    assert "declaredActor" not in created


def test_another_stamp_attribute_or_none_at_all() -> None:
    rec = record("MODIFY", item(v={"N": "1"}, by={"S": "a"}), item(v={"N": "1"}, by={"S": "b"}))
    assert [e["updatedAttribute"]["S"] for e in changes_for_record(rec, actor_attribute=None).entries] == ["by"]
    assert changes_for_record(rec, actor_attribute="by").entries == []
