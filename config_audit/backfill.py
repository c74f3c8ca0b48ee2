"""``config-audit backfill``: give the entries written before the time index existed their place in it.

The time index (GET /changes, ``config-audit changes``) holds the entries that carry ``timeShard``.
Provisioning adds the index to a trail made by an earlier version; this command then rewrites each
entry that lacks the attribute, unchanged but for it, through the repository's own write path.
Safe to run twice: a second run finds nothing to do. It reads the whole trail once (a Scan: a
one-off upgrade, never a query path).
"""

from __future__ import annotations

from typing import Any

from chalicelib.audit.repository import TIME_SHARD, DynamoDBAuditRepository, unstored
from config_audit.errors import Incomplete


def backfill(dynamodb: Any, trail: str) -> int:
    """Index every entry of ``trail`` that is not in the time index yet; the number indexed.

    Incomplete when DynamoDB leaves some unwritten after every retry (run it again).
    """
    repository = DynamoDBAuditRepository(dynamodb, trail)
    scan: dict[str, Any] = {
        "TableName": trail,
        "FilterExpression": "attribute_not_exists(#shard)",
        "ExpressionAttributeNames": {"#shard": TIME_SHARD},
    }
    indexed = 0
    while True:
        page = dynamodb.scan(**scan)
        entries = [unstored(item) for item in page["Items"]]
        result = repository.save(entries)
        indexed += len(entries) - len(result.unwritten) - len(result.refused)
        if result.unwritten or result.refused:
            raise Incomplete(
                f"{indexed} entries of {trail!r} indexed, {len(result.unwritten) + len(result.refused)} not written: "
                "run backfill again"
            )
        if "LastEvaluatedKey" not in page:
            return indexed
        scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]
