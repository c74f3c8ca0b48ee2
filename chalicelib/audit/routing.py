"""Pure: which audited table a record belongs to (SPEC.md, "Audited tables": Routing).

A record belongs to the table its ``eventSourceARN`` names (``…:table/NAME/stream/…``). With one
audited table every record goes to its trail whatever the ARN says (the seed's ARN carries a
deployment prefix); with several, a record of a table no pair names fails the batch with a
configuration error, so that nothing of it is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from chalicelib.settings import AuditedTable, UnknownTable


def table_in_arn(arn: str) -> str | None:
    """The table a DynamoDB table or stream ARN names (``…:table/NAME[/stream/…]``), or None."""
    if ":table/" not in arn:
        return None
    return arn.split(":table/", 1)[1].split("/", 1)[0] or None


def source_table(record: Any) -> str | None:
    """The table name in a record's eventSourceARN, or None where it has none."""
    arn = record.get("eventSourceARN") if isinstance(record, Mapping) else None
    return table_in_arn(arn) if isinstance(arn, str) else None


def by_table(event: Any, tables: Sequence[AuditedTable]) -> list[tuple[AuditedTable, Any]]:
    """The event as one event per audited table, in the order their records first appear.

    One audited table: the whole event, as it came. Several: UnknownTable for the first record
    whose table none of them is (the batch fails; Lambda keeps it until the deployment is fixed).
    """
    records = event.get("Records") if isinstance(event, Mapping) else None
    if len(tables) == 1 or not isinstance(records, list):
        return [(tables[0], event)]
    named = {table.source: table for table in tables}
    groups: dict[str, list[Any]] = {}
    for record in records:
        source = source_table(record)
        if source not in named:
            raise UnknownTable(source or "(a record with no eventSourceARN)", tuple(tables))
        groups.setdefault(source, []).append(record)
    return [(named[source], {**event, "Records": part}) for source, part in groups.items()]
