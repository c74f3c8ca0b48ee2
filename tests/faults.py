"""Fault injection on the write path through botocore's event hooks (moto never throttles)."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, ReadTimeoutError

FAULTS = ("throttle", "unprocessed", "server_error", "timeout")


class WriteFaults:
    """Makes chosen ``BatchWriteItem`` calls of one client fail the way DynamoDB fails.

    ``plan(call_number, request_items)`` names the fault of each call (None: the call goes through);
    calls are numbered in the order they reach the hook, which writer threads make arbitrary, so a
    test that needs one group to fail names it by its items:
    ``throttle`` raises ProvisionedThroughputExceededException, ``server_error`` answers 500,
    ``timeout`` raises a read timeout *after* the write landed (the worst case: the caller cannot
    know), ``unprocessed`` writes the first part of the request and returns the rest as
    ``UnprocessedItems``, as DynamoDB does under load.
    """

    def __init__(self, client: Any, writer: Any, plan: Callable[[int, dict[str, Any]], str | None]) -> None:
        self.client = client
        self.writer = writer  # an unhooked client on the same endpoint, to land partial writes
        self.plan = plan
        self.calls = 0
        self.injected: dict[str, int] = {}
        self._lock = threading.Lock()  # the repository's writer threads call in at once
        client.meta.events.register("before-call.dynamodb.BatchWriteItem", self._before_call)

    def remove(self) -> None:
        self.client.meta.events.unregister("before-call.dynamodb.BatchWriteItem", self._before_call)

    def _before_call(self, params: dict[str, Any], **_: Any) -> Any:
        request = json.loads(params["body"])["RequestItems"]
        with self._lock:
            number = self.calls
            self.calls += 1
            fault = self.plan(number, request)
            if fault is None:
                return None
            self.injected[fault] = self.injected.get(fault, 0) + 1
        if fault == "throttle":
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "injected"}},
                "BatchWriteItem",
            )
        if fault == "server_error":
            error = {"Error": {"Code": "InternalServerError", "Message": "injected"},
                     "ResponseMetadata": {"HTTPStatusCode": 500}}  # fmt: skip
            return AWSResponse("https://fault", 500, {}, None), error
        if fault == "timeout":
            self.writer.batch_write_item(RequestItems=request)
            raise ReadTimeoutError(endpoint_url="https://fault")
        if fault == "unprocessed":
            unprocessed = {}
            for table, requests in request.items():
                keep = len(requests) // 2
                if keep:
                    self.writer.batch_write_item(RequestItems={table: requests[:keep]})
                unprocessed[table] = requests[keep:]
            return AWSResponse("https://fault", 200, {}, None), {"UnprocessedItems": unprocessed}
        raise ValueError(f"unknown fault {fault!r}")


Plan = Callable[[int, dict[str, Any]], str | None]


def every(nth: int, fault: str) -> Plan:
    """The fault on every nth call (from the first)."""
    return lambda number, _items: fault if number % nth == 0 else None


def share(rate: float, seed: int, faults: tuple[str, ...] = FAULTS) -> Plan:
    """A random fault on about ``rate`` of the calls, reproducibly."""
    rng = random.Random(seed)
    return lambda _number, _items: rng.choice(faults) if rng.random() < rate else None


def always(fault: str) -> Plan:
    return lambda _number, _items: fault


def unless_all_in(ids: set[str], fault: str) -> Plan:
    """The fault on every call that writes an entry whose id is not in ``ids``."""

    def plan(_number: int, items: dict[str, Any]) -> str | None:
        written = {request["PutRequest"]["Item"]["id"]["S"] for requests in items.values() for request in requests}
        return None if written <= ids else fault

    return plan
