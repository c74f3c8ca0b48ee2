"""Routing (SPEC.md, "Audited tables"): each record to its own table's trail, by its eventSourceARN."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.audit.entries import entry_id
from chalicelib.audit.producer import AuditProducer
from chalicelib.audit.routing import source_table
from chalicelib.settings import AuditedTable, UnknownTable
from tests.fakes import InMemoryAuditRepository, InMemoryNotifier
from tests.records import created


def arn(table: str) -> str:
    return f"arn:aws:dynamodb:eu-central-1:123456789012:table/{table}/stream/2024-09-11T09:00:17.927"


def of(table: str, key: str, sequence: str) -> dict[str, Any]:
    return {**created(key, sequence), "eventSourceARN": arn(table)}


@pytest.mark.parametrize(
    ("record", "table"),
    [({"eventSourceARN": arn("FeatureFlags")}, "FeatureFlags"),
     ({"eventSourceARN": arn("cmtr-134cb1e3-Configuration-test")}, "cmtr-134cb1e3-Configuration-test"),
     ({}, None), ({"eventSourceARN": "not an arn"}, None), ("a string", None)],
)  # fmt: skip
def test_a_records_table_is_the_name_in_its_event_source_arn(record: Any, table: str | None) -> None:
    assert source_table(record) == table


def audited(*names: str) -> tuple[dict[AuditedTable, InMemoryAuditRepository], AuditProducer, InMemoryNotifier]:
    trails = {AuditedTable(name, f"{name}Audit"): InMemoryAuditRepository() for name in names}
    notifier = InMemoryNotifier()
    first = next(iter(trails.values()))
    return (
        trails,
        AuditProducer(first, report_batch_item_failures=True, notifier=notifier, trails=dict(trails)),
        notifier,
    )


@pytest.mark.parametrize("names", [("Configuration", "FeatureFlags"), ("Configuration", "FeatureFlags", "Tenants")])
def test_each_record_lands_in_its_own_tables_trail_and_nowhere_else(names: tuple[str, ...]) -> None:
    trails, producer, notifier = audited(*names)
    # GIVEN one event holding records of every audited table, interleaved
    records = [of(name, f"{name}-K{n}", str(100 + 10 * n + i)) for n in range(3) for i, name in enumerate(names)]
    assert producer.handle({"Records": records}) == {"batchItemFailures": []}
    # THEN each trail holds exactly its table's entries
    for table, trail in trails.items():
        assert {e["itemKey"]["S"] for e in trail.entries.values()} == {f"{table.source}-K{n}" for n in range(3)}
    # AND each notification names the table it is of
    for message in notifier.messages:
        attributes = message["MessageAttributes"]
        assert attributes["itemKey"]["StringValue"].startswith(attributes["tableName"]["StringValue"] + "-")


def test_a_record_of_a_table_no_pair_names_fails_the_batch_and_nothing_is_dropped() -> None:
    trails, producer, _ = audited("Configuration", "FeatureFlags")
    event = {"Records": [of("Configuration", "A", "100"), of("Orders", "B", "101")]}
    with pytest.raises(
        UnknownTable, match=r"table 'Orders' is not audited here: AUDITED_TABLES names 'Configuration', 'FeatureFlags'"
    ):
        producer.handle(event)
    assert all(trail.entries == {} for trail in trails.values())  # nothing written before the error


def test_with_several_tables_a_record_without_an_arn_is_not_guessed() -> None:
    _, producer, _ = audited("Configuration", "FeatureFlags")
    with pytest.raises(UnknownTable, match="no eventSourceARN"):
        producer.handle({"Records": [created("A", "100")]})


def test_with_one_table_every_record_goes_to_its_trail_whatever_the_arn_says() -> None:
    trails, producer, _ = audited("Configuration")
    producer.handle({"Records": [of("cmtr-134cb1e3-Configuration-test", "A", "100"), created("B", "101")]})
    [trail] = trails.values()
    assert set(trail.entries) == {entry_id("A-100"), entry_id("B-101")}


def test_a_poison_record_is_dead_lettered_with_the_table_it_came_from() -> None:
    from tests.fakes import InMemoryDeadLetters

    trails = {
        AuditedTable(name, f"{name}Audit"): InMemoryAuditRepository() for name in ("Configuration", "FeatureFlags")
    }
    dead = InMemoryDeadLetters()
    producer = AuditProducer(next(iter(trails.values())), dead_letters=dead, trails=dict(trails))
    poison = {**of("FeatureFlags", "K", "100"), "eventName": "UPSERT"}
    assert producer.handle({"Records": [poison]}) == {"batchItemFailures": []}
    [letter] = dead.letters
    assert letter["tableName"] == "FeatureFlags" and "unknown eventName" in letter["reason"]
