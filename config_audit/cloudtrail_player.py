"""A local stack's CloudTrail and EventBridge, played in the writer's process: each write call a
DynamoDB client makes on an audited table reaches actor_recorder as the event CloudTrail
would deliver (the documented data-event format: plain key strings, eventTime to the second),
with the caller identity moto's STS reports. Used by `make run`, `make demo` and config-audit."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import functools
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
        self._client: Any = None
        self.deliver = deliver
        self.identity = identity
        self.region = region

    def attach(self, client: Any) -> None:
        self._client = client
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

    @functools.cache  # noqa: B019 - one player a stack or a CLI run: its tables' schemas never change
    def _key_names(self, table: str) -> frozenset[str]:
        """The names of a table's key attributes (CloudTrail logs the key of a PutItem's item)."""
        try:
            schema = self._client.describe_table(TableName=table)["Table"]["KeySchema"]
        except Exception:
            return frozenset({"key"})
        return frozenset(str(part["AttributeName"]) for part in schema)

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
                "requestParameters": request_parameters(name, params, self._key_names),
                "responseElements": None,
                "eventID": str(uuid.uuid4()),
                "readOnly": False,
                "eventType": "AwsApiCall",
                "managementEvent": False,
                "eventCategory": "Data",
            },
        }


KeyNames = Callable[[str], frozenset[str]]  # a table's name -> its key attributes' names


def request_parameters(name: str, params: dict[str, Any], key_names: KeyNames) -> dict[str, Any]:
    """A call's parameters as CloudTrail logs them: key values as plain text, no other values."""

    def key(table: str, attributes: dict[str, Any], whole: bool) -> dict[str, Any]:
        # a Key parameter is all key; an Item holds the key among its other attributes
        return _plain_key(attributes, frozenset(attributes) if whole else key_names(table))

    if name in ("PutItem", "UpdateItem", "DeleteItem"):
        table = params["TableName"]
        logged: dict[str, Any] = {
            "tableName": table,
            "key": key(table, params.get("Key") or params["Item"], "Key" in params),
        }
        if name == "PutItem":
            logged["item"] = sorted(params["Item"])
        return logged
    if name == "BatchWriteItem":
        return {
            "requestItems": {
                table: [
                    {"putRequest": {"key": key(table, r["PutRequest"]["Item"], False)}}
                    if "PutRequest" in r
                    else {"deleteRequest": {"key": key(table, r["DeleteRequest"]["Key"], True)}}
                    for r in requests
                ]
                for table, requests in params["RequestItems"].items()
            }
        }
    if name == "TransactWriteItems":
        items = []
        for item in params["TransactItems"]:
            ((operation, body),) = item.items()
            table = body["TableName"]
            written = key(table, body.get("Key") or body.get("Item", {}), "Key" in body)
            items.append({"operation": operation, "tableName": table, "key": written})
        return {"requestItems": items}
    return {"statement": params.get("Statement", "")}  # PartiQL: the statement as sent


def _plain_key(attributes: dict[str, Any], names: frozenset[str]) -> dict[str, Any]:
    """The key attributes' values as CloudTrail logs them: plain text (numbers as sent, binary as base64)."""
    return {name: _plain(value) for name, value in attributes.items() if name in names}


def _plain(value: Any) -> Any:
    if not isinstance(value, dict) or len(value) != 1:
        return value
    [(tag, payload)] = value.items()
    if tag == "B":
        return base64.b64encode(payload).decode() if isinstance(payload, bytes) else payload
    return payload
