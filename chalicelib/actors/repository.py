"""The only code that writes or reads the AuditActors table: who called which write, from CloudTrail."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from chalicelib.actors.cloudtrail import Call
from chalicelib.audit.repository import BATCH_WRITE_LIMIT
from chalicelib.aws_calls import AwsAdapter, Backoff, Reply, send_in_groups
from chalicelib.observability import logger


class ActorRepository(Protocol):
    def record(self, calls: Sequence[Call]) -> list[Call]:
        """Keep each (key, call) once, however often it is recorded; return the calls not kept."""
        ...

    def calls(self, table: str, key: str, first: str, last: str) -> list[Call]:
        """The calls on ``key`` of ``table`` whose eventTime lies from ``first`` to ``last`` (both included)."""
        ...


def stored_key(table: str, key: str) -> str:
    """AuditActors' itemKey: the table, then the key as CloudTrail names it. A table's name holds
    no '#' (DynamoDB allows letters, digits, '_', '-', '.'), so no two (table, key) pairs meet."""
    return f"{table}#{key}"


class DynamoDBActorRepository(AwsAdapter):
    """AuditActors: hash key itemKey = <table>#<key>, range key eventKey = <eventTime>#<CloudTrail eventID>."""

    def __init__(self, client: Any, table_name: str, backoff: Backoff | None = None) -> None:
        super().__init__(client, f"AuditActors table {table_name!r} (ACTORS_TABLE_NAME)", backoff)
        self._table = table_name

    def record(self, calls: Sequence[Call]) -> list[Call]:
        unique = list({(c.table, c.item_key, c.event_key): c for c in calls}.values())  # one put per (key, call)
        sent = send_in_groups(unique, BATCH_WRITE_LIMIT, self._send, self._backoff)
        for call, why in sent.refused:  # retrying cannot help; the change shows its stamp, or no actor
            logger.error("AuditActors refused a call", extra={"itemKey": call.item_key, "reason": why})
        return sent.unsent

    def _send(self, pending: list[Call]) -> Reply[Call]:
        """One BatchWriteItem; the calls DynamoDB left unprocessed are to be sent again."""
        by_key = {(stored_key(c.table, c.item_key), c.event_key): c for c in pending}
        requests = [{"PutRequest": {"Item": _item(c)}} for c in pending]
        response = self._call("batch_write_item", RequestItems={self._table: requests})
        unprocessed = [r["PutRequest"]["Item"] for r in response.get("UnprocessedItems", {}).get(self._table, [])]
        return Reply(deferred=[by_key[(item["itemKey"]["S"], item["eventKey"]["S"])] for item in unprocessed])

    def calls(self, table: str, key: str, first: str, last: str) -> list[Call]:
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "itemKey = :key AND eventKey BETWEEN :first AND :last",
            # every eventKey of the last second sorts below "<last>$": "#" < "$"
            "ExpressionAttributeValues": {
                ":key": {"S": stored_key(table, key)},
                ":first": {"S": first},
                ":last": {"S": last + "$"},
            },
        }
        found: list[Call] = []
        while True:
            response = self._call("query", **query)
            found += [_call(item) for item in response["Items"]]
            if "LastEvaluatedKey" not in response:
                return found
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _item(c: Call) -> dict[str, Any]:
    return {
        "itemKey": {"S": stored_key(c.table, c.item_key)},
        "eventKey": {"S": c.event_key},
        "arn": {"S": c.arn},
        "type": {"S": c.type},
        "call": {"S": c.call},
        "eventTime": {"S": c.event_time},
        "eventId": {"S": c.event_id},
    }


def _call(item: dict[str, Any]) -> Call:
    table, _, key = item["itemKey"]["S"].partition("#")
    return Call(
        table=table,
        item_key=key,
        event_time=item["eventTime"]["S"],
        event_id=item["eventId"]["S"],
        arn=item["arn"]["S"],
        type=item["type"]["S"],
        call=item["call"]["S"],
    )
