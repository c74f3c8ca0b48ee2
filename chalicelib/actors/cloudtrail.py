"""Who made each change (SPEC.md, "Who made the change"): CloudTrail's part, parsed. Pure: no I/O.

``calls_in``: an EventBridge event of a CloudTrail data event -> the write calls it records on
the audited tables, one ``Call`` per (table, key, call). Read from AWS's documented log format
("Understanding DynamoDB log file entries"): key values untyped, ``eventTime`` to the second,
the caller in ``userIdentity``; field names whose case varies inside transactions; PartiQL
statements whose key is a literal or a ``?`` parameter of the ``WHERE`` clause. An
event that cannot be used raises ``Unattributable`` with the reason. The read-time join is
``actors/attribution.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.audit.keys import loose_key_text, number_text
from chalicelib.audit.records import KEY_ATTRIBUTE
from chalicelib.audit.routing import table_in_arn

MAX_WRITES_PER_CALL = 100  # TransactWriteItems' limit, the largest of the write calls
_EVENT_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_REDACTED = "***(Redacted)"


class Unattributable(ValueError):
    """An event that names no write call on the audited table; it is logged and skipped."""


@dataclass(frozen=True)
class Call:
    """One write call on one configuration key, as CloudTrail recorded it."""

    item_key: str
    event_time: str  # YYYY-MM-DDTHH:MM:SSZ
    event_id: str
    arn: str
    type: str
    call: str
    table: str  # the audited table the call wrote: AuditActors keeps calls per (table, key)

    @property
    def event_key(self) -> str:
        """The range key in AuditActors: ordered by time, unique per CloudTrail event."""
        return f"{self.event_time}#{self.event_id}"


def calls_in(event: Any, tables: str | Collection[str], key_attribute: str = KEY_ATTRIBUTE) -> list[Call]:
    """The write calls on the audited ``tables`` an EventBridge CloudTrail event records, one per
    (table, key); a call on any other table is never recorded, so it can never name an entry."""
    audited = {tables} if isinstance(tables, str) else set(tables)
    detail = _detail(event)
    name = detail.get("eventName")
    if name not in WRITE_CALLS:
        raise Unattributable(f"eventName {name!r:.60} is not a write call")
    if detail.get("errorCode"):
        raise Unattributable(f"the call failed ({detail['errorCode']!s:.60}), so it changed nothing")
    event_time, event_id = detail.get("eventTime"), detail.get("eventID")
    if not isinstance(event_time, str) or not _EVENT_TIME.match(event_time):
        raise Unattributable(f"eventTime is not YYYY-MM-DDTHH:MM:SSZ: {event_time!r:.40}")
    if not isinstance(event_id, str) or not event_id:
        raise Unattributable("the event has no eventID")
    arn, kind = _caller(detail.get("userIdentity"))
    parameters = detail.get("requestParameters")
    if not isinstance(parameters, dict):
        raise Unattributable("the event has no requestParameters")
    targets = list(_TARGETS[name](parameters, key_attribute))
    if len(targets) > MAX_WRITES_PER_CALL:
        raise Unattributable(f"{len(targets)} writes in one call, more than DynamoDB allows ({MAX_WRITES_PER_CALL})")
    keys = sorted({(_table_name(table), key) for table, key in targets if _table_name(table) in audited})
    if not keys:
        named = sorted({str(table) for table, _ in targets})
        audited_names = ", ".join(sorted(audited))
        raise Unattributable(
            f"no key of an audited table ({audited_names}) in the call (tables: {', '.join(named) or 'none'})"
        )
    return [Call(key, event_time, event_id, arn, kind, name, str(table)) for table, key in keys]


def _detail(event: Any) -> dict[str, Any]:
    if not isinstance(event, Mapping):
        raise Unattributable("the event is not an object")
    if event.get("source") != "aws.dynamodb" or event.get("detail-type") != "AWS API Call via CloudTrail":
        raise Unattributable(f"not a DynamoDB API call via CloudTrail: {event.get('detail-type')!r:.60}")
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise Unattributable("the event has no detail object")
    if detail.get("eventSource") not in (None, "dynamodb.amazonaws.com"):
        raise Unattributable(f"eventSource is {detail.get('eventSource')!r:.60}")
    return detail


def _caller(identity: Any) -> tuple[str, str]:
    """(arn, type) of the caller; an AWS service has no ARN, so it is named by invokedBy."""
    if not isinstance(identity, dict):
        raise Unattributable("the event has no userIdentity")
    arn = identity.get("arn") or identity.get("invokedBy")
    kind = identity.get("type")
    if not isinstance(arn, str) or not arn or not isinstance(kind, str) or not kind:
        raise Unattributable("userIdentity has no arn and type")
    return arn, kind


Targets = Iterable[tuple[Any, str]]  # (table, key) of each write a call names


def _single_write(parameters: dict[str, Any], key_attribute: str) -> Targets:
    yield parameters.get("tableName"), _key(parameters, key_attribute)


def _transaction(parameters: dict[str, Any], key_attribute: str) -> Targets:
    items = _either(parameters, "requestItems", "transactItems")
    if not isinstance(items, list):
        raise Unattributable("TransactWriteItems has no requestItems list")
    for item in items:
        if not isinstance(item, dict):
            raise Unattributable("a TransactWriteItems item is not an object")
        if _either(item, "operation", "Operation") == "ConditionCheck":
            continue  # checks, writes nothing
        yield _either(item, "tableName", "TableName"), _key(item, key_attribute)


def _statement(parameters: dict[str, Any], key_attribute: str) -> Targets:
    yield _statement_target(parameters, key_attribute)


def _statements(parameters: dict[str, Any], key_attribute: str) -> Targets:
    items = parameters.get("requestItems")
    if not isinstance(items, list):
        raise Unattributable("BatchExecuteStatement has no requestItems list")
    for item in items:
        if not isinstance(item, dict):
            raise Unattributable("a BatchExecuteStatement item is not an object")
        try:
            yield _statement_target(item, key_attribute)
        except Unattributable:
            continue  # a redacted INSERT beside readable statements: keep what can be read


def _batch_write(parameters: dict[str, Any], key_attribute: str) -> Targets:
    return _batch_write_targets(parameters.get("requestItems"), key_attribute)


# How each write call's requestParameters name the items it writes.
_TARGETS: dict[str, Callable[[dict[str, Any], str], Targets]] = {
    "PutItem": _single_write,
    "UpdateItem": _single_write,
    "DeleteItem": _single_write,
    "BatchWriteItem": _batch_write,
    "TransactWriteItems": _transaction,
    "ExecuteStatement": _statement,
    "BatchExecuteStatement": _statements,
}
WRITE_CALLS = frozenset(_TARGETS)


def _batch_write_targets(items: Any, key_attribute: str) -> Iterable[tuple[Any, str]]:
    """BatchWriteItem, whose log format AWS does not document: {table: [requests]} or a list of
    requests naming their table; each put or delete request holds the key map."""
    if isinstance(items, dict):
        pairs = [(table, request) for table, requests in items.items() for request in _listed(requests)]
    elif isinstance(items, list):
        pairs = [(_either(r, "tableName", "TableName") if isinstance(r, dict) else None, r) for r in items]
    else:
        raise Unattributable("BatchWriteItem has no requestItems")
    for table, request in pairs:
        if not isinstance(request, dict):
            raise Unattributable("a BatchWriteItem request is not an object")
        inner = next((request[n] for n in ("putRequest", "PutRequest", "deleteRequest", "DeleteRequest")
                      if isinstance(request.get(n), dict)), request)  # fmt: skip
        yield table, _key(inner, key_attribute)


def _listed(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise Unattributable("BatchWriteItem's requests are not a list")
    return value


def _key(container: dict[str, Any], key_attribute: str) -> str:
    """A write's key as CloudTrail logs it (plain values, names as given) -> its loose text."""
    keys = _either(container, "key", "Key")
    if not isinstance(keys, dict) or not 1 <= len(keys) <= 2:
        raise Unattributable("a write names no key of one or two attributes")
    return loose_key_text({str(name): _key_value(value) for name, value in keys.items()})


def _key_value(value: Any) -> str:
    """A key value as CloudTrail logs it: a plain string or number (or, leniently, {"S"|"N": ...})."""
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("S", "N"):
        [(tag, value)] = value.items()
        if tag == "N":
            value = number_text(str(value)) or value
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = number_text(repr(value)) or ""
    if not isinstance(value, str) or not value:
        raise Unattributable(f"the key is not a string or number: {value!r:.40}")
    if value == _REDACTED:
        raise Unattributable("CloudTrail redacted the key")
    return value


_TABLE = r'"?([A-Za-z0-9_.\-]+)"?'
_LITERAL = r"'((?:[^']|'')*)'"
_STATEMENTS = [
    re.compile(rf"^\s*UPDATE\s+{_TABLE}\s", re.I),
    re.compile(rf"^\s*DELETE\s+FROM\s+{_TABLE}\s", re.I),
    re.compile(rf"^\s*INSERT\s+INTO\s+{_TABLE}\s", re.I),
]


def _statement_target(parameters: dict[str, Any], key_attribute: str) -> tuple[str, str]:
    """(table, key) of a PartiQL write: the key's literal, or its ``?`` parameter."""
    statement = _either(parameters, "statement", "Statement")
    if not isinstance(statement, str):
        raise Unattributable("a PartiQL call has no statement")
    table = next((m.group(1) for pattern in _STATEMENTS if (m := pattern.match(statement))), None)
    if table is None:
        raise Unattributable(f"not a PartiQL write: {statement[:60]!r}")
    name = re.escape(key_attribute)
    if statement.lstrip()[:6].upper() == "INSERT":
        found = re.search(rf"'{name}'\s*:\s*({_LITERAL}|\?|\*\*\*\(Redacted\))", statement)
    else:
        found = re.search(rf'\bWHERE\b.*?(?:"{name}"|\b{name}\b)\s*=\s*({_LITERAL}|\?)', statement, re.I | re.S)
    if found is None:
        raise Unattributable(f"the statement names no {key_attribute!r}: {statement[:60]!r}")
    if found.group(1) == _REDACTED:
        raise Unattributable("CloudTrail redacts every value of a PartiQL INSERT, the key included")
    if found.group(1) == "?":
        position = statement[: found.start(1)].count("?")
        values = _either(parameters, "parameters", "Parameters")
        if not isinstance(values, list) or position >= len(values):
            raise Unattributable("the key is a parameter the event does not carry")
        return table, _key_value(values[position])
    return table, _key_value(found.group(2).replace("''", "'"))


def _either(container: Mapping[str, Any], *names: str) -> Any:
    """The first of ``names`` present: CloudTrail's field names vary in case in transactions."""
    return next((container[name] for name in names if name in container), None)


def _table_name(table: Any) -> str | None:
    """A table named by name or by ARN (DynamoDB accepts both)."""
    if not isinstance(table, str):
        return None
    return table_in_arn(table) if ":table/" in table else table
