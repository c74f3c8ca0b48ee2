"""An in-memory DynamoDB BatchWriteItem, for repository tests that need no AWS at all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError


class FakeDynamoDB:
    """Stores put items per table; ``script(call_number, requests)`` may fail a call."""

    def __init__(self, script: Callable[[int, list[Any]], str | None] = lambda n, r: None) -> None:
        self.tables: dict[str, dict[str, dict[str, Any]]] = {}
        self.calls: list[int] = []
        self._script = script

    def batch_write_item(self, RequestItems: dict[str, list[Any]]) -> dict[str, Any]:
        ((table, requests),) = RequestItems.items()
        assert len(requests) <= 25, "BatchWriteItem takes at most 25 requests"
        self.calls.append(len(requests))
        fault = self._script(len(self.calls) - 1, requests)
        if fault == "missing":
            raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "no"}}, "BatchWriteItem")
        if fault == "throttle":
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "BatchWriteItem")
        refused = [r for r in requests if r["PutRequest"]["Item"]["itemKey"]["S"] == "REFUSED"]
        if refused:
            raise ClientError(
                {
                    "Error": {
                        "Code": "ValidationException",
                        "Message": "Item size has exceeded the maximum allowed size",
                    }
                },
                "BatchWriteItem",
            )
        stored = self.tables.setdefault(table, {})
        written = requests if fault != "half" else requests[: len(requests) // 2]
        for request in written:
            entry = request["PutRequest"]["Item"]
            stored[entry["id"]["S"]] = entry
        unprocessed = requests[len(written) :]
        return {"UnprocessedItems": {table: unprocessed} if unprocessed else {}}
