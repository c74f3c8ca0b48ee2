"""A local stack's CloudTrail and EventBridge, played in the writer's process: each write call a
DynamoDB client makes on the Configuration table reaches actor_recorder as the event CloudTrail
would deliver (the documented data-event format: plain key strings, eventTime to the second),
with the caller identity moto's STS reports. Used by `make run`, `make demo` and config-audit."""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from chalicelib.actors.cloudtrail import WRITE_CALLS

Deliver = Callable[[dict[str, Any]], Any]


def identity_of(sts: Any) -> dict[str, str]:
    """The caller as CloudTrail's userIdentity names it, from STS GetCallerIdentity."""
    caller = sts.get_caller_identity()
    arn = str(caller["Arn"])
    kind = "AssumedRole" if ":assumed-role/" in arn else "Root" if arn.endswith(":root") else "IAMUser"
    return {"type": kind, "arn": arn, "accountId": str(caller["Account"]), "principalId": str(caller["UserId"])}


class CloudTrailPlayer:
    """Attach to a boto3 DynamoDB client; every successful write call is delivered as an event."""

    def __init__(self, deliver: Deliver, identity: dict[str, str], region: str) -> None:
        self.deliver = deliver
        self.identity = identity
        self.region = region

    def attach(self, client: Any) -> None:
        client.meta.events.register("provide-client-params.dynamodb", self._remember)
        client.meta.events.register("after-call.dynamodb", self._after_call)

    def _remember(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if model.name in WRITE_CALLS:
            context["cloudtrail"] = (model.name, copy.deepcopy(params))

    def _after_call(self, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if "cloudtrail" not in context or http_response.status_code != 200 or "Error" in parsed:
            return  # a failed call changed nothing; CloudTrail would log it with an errorCode
        name, params = context.pop("cloudtrail")
        self.deliver(self.event(name, params))

    def event(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.dynamodb",
            "account": self.identity["accountId"],
            "time": now,
            "region": self.region,
            "resources": [],
            "detail": {
                "eventVersion": "1.08",
                "userIdentity": self.identity,
                "eventTime": now,
                "eventSource": "dynamodb.amazonaws.com",
                "eventName": name,
                "awsRegion": self.region,
                "requestParameters": request_parameters(name, params),
                "responseElements": None,
                "eventID": str(uuid.uuid4()),
                "readOnly": False,
                "eventType": "AwsApiCall",
                "managementEvent": False,
                "eventCategory": "Data",
            },
        }


def request_parameters(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """A call's parameters as CloudTrail logs them: keys as plain strings, no other values."""
    if name in ("PutItem", "UpdateItem", "DeleteItem"):
        key_source = params.get("Key") or params.get("Item", {})
        logged: dict[str, Any] = {"tableName": params["TableName"], "key": _plain_key(key_source)}
        if name == "PutItem":
            logged["item"] = sorted(params["Item"])
        return logged
    if name == "BatchWriteItem":
        return {
            "requestItems": {
                table: [
                    {"putRequest": {"key": _plain_key(r["PutRequest"]["Item"])}}
                    if "PutRequest" in r
                    else {"deleteRequest": {"key": _plain_key(r["DeleteRequest"]["Key"])}}
                    for r in requests
                ]
                for table, requests in params["RequestItems"].items()
            }
        }
    if name == "TransactWriteItems":
        items = []
        for item in params["TransactItems"]:
            ((operation, body),) = item.items()
            items.append({"operation": operation, "tableName": body["TableName"],
                          "key": _plain_key(body.get("Key") or body.get("Item", {}))})  # fmt: skip
        return {"requestItems": items}
    return {"statement": params.get("Statement", "")}  # PartiQL: the statement as sent


def _plain_key(attributes: dict[str, Any]) -> dict[str, Any]:
    """The key attribute as a plain string (the Configuration table keys on ``key`` alone)."""
    value = attributes.get("key", {})
    return {"key": value.get("S") if isinstance(value, dict) else value}
