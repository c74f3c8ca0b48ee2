"""A rollback: the item as of a time, replayed from its history, written back under its typed key
with the operator's own credentials, only if the table still holds what the history says it holds now.

A redacted digest is never written back as a value, at any depth; a write another writer makes
meanwhile is never silently lost.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.attribute_values import AttributeValue, changed_names, same_value
from chalicelib.audit.redaction import PREFIX as REDACTED
from config_audit.errors import Incomplete, NotDone
from config_audit.render import AttributePath, spelled_path
from config_audit.replay import Item, item_at
from config_audit.trail import Trail


@dataclass(frozen=True)
class RollbackPlan:
    """What a rollback found and will do. ``before`` and ``after`` are the history's own view of the
    change (secrets as their digests), which is what the operator is shown: never a plain secret."""

    current: Item | None  # what the table holds now
    target: Item | None  # what to write back (None deletes it); a kept secret holds the table's value
    before: Item | None
    after: Item | None


def plan_rollback(trail: Trail, key: str, time: str) -> RollbackPlan:
    """The item to write back as of ``time``, or NotDone saying why not.

    A redacted digest is never part of the item to write back, at any depth: where the history
    says the secret is unchanged since ``time``, the table's own value at that path is kept;
    otherwise the rollback is refused.
    """
    entries = trail.known_entries(key)
    recorded_now, target = item_at(entries, key, None), item_at(entries, key, time)
    current = trail.current(key)
    ignored = {trail.actor_attribute} if trail.actor_attribute else set()
    stale = _changed(recorded_now, current, ignored)
    if stale or (recorded_now is None) != (current is None):
        differing = ", ".join(repr(name) for name in stale) or "existence"
        raise NotDone(
            f"{key!r} is not what its history says it is now (differs in: {differing}); "
            "a change may not have reached the audit trail yet, or was made around it: nothing written"
        )
    if target is None:
        return RollbackPlan(current, None, recorded_now, None)
    restored = target
    for path in [path for name, value in target.items() for path in _digest_paths(value, (name,))]:
        digest, recorded, kept = _at(target, path), _at(recorded_now, path), _at(current, path)
        if recorded is None or kept is None or digest is None or not same_value(recorded, digest):
            raise NotDone(
                f"'{spelled_path(path)}' held a secret at that time, redacted in the history, and the table no "
                "longer holds that secret: it cannot be restored; nothing written"
            )
        restored = _replaced(restored, path, kept)  # unchanged since TIME: the table's own value
    return RollbackPlan(current, restored, recorded_now, target)


def _is_digest(value: AttributeValue) -> bool:
    return isinstance(value.get("S"), str) and value["S"].startswith(REDACTED)


def _digest_paths(value: AttributeValue, path: AttributePath) -> Iterator[AttributePath]:
    """Where a redacted digest stands in ``value``: the value itself, or inside its maps and lists."""
    if _is_digest(value):
        yield path
    elif isinstance(value.get("M"), dict):
        for name, member in value["M"].items():
            yield from _digest_paths(member, (*path, name))
    elif isinstance(value.get("L"), list):
        for index, element in enumerate(value["L"]):
            yield from _digest_paths(element, (*path, index))


def _at(item: Item | None, path: AttributePath) -> AttributeValue | None:
    """The value at ``path`` in ``item``, or None where the item or a step of the path is missing."""
    value: AttributeValue | None = {"M": item} if item is not None else None
    for step in path:
        if value is None:
            return None
        if isinstance(step, str):
            members = value.get("M")
            value = members.get(step) if isinstance(members, dict) else None
        else:
            elements = value.get("L")
            value = elements[step] if isinstance(elements, list) and step < len(elements) else None
    return value


def _replaced(item: Item, path: AttributePath, new: AttributeValue) -> Item:
    """A copy of ``item`` with the value at ``path`` (which exists) replaced by ``new``."""

    def replace(value: AttributeValue, steps: AttributePath) -> AttributeValue:
        if not steps:
            return new
        step, rest = steps[0], steps[1:]
        if isinstance(step, str):
            return {"M": {**value["M"], step: replace(value["M"][step], rest)}}
        elements = list(value["L"])
        elements[step] = replace(elements[step], rest)
        return {"L": elements}

    replaced: Item = replace({"M": item}, path)["M"]
    return replaced


def _agrees(recorded: AttributeValue, actual: AttributeValue) -> bool:
    """Whether the table's value is what the history records; a digest stands for any value."""
    if _is_digest(recorded):
        return True
    if isinstance(recorded.get("M"), dict) and isinstance(actual.get("M"), dict):
        members, held = recorded["M"], actual["M"]
        return members.keys() == held.keys() and all(_agrees(members[n], held[n]) for n in members)
    if isinstance(recorded.get("L"), list) and isinstance(actual.get("L"), list):
        elements, held_elements = recorded["L"], actual["L"]
        return len(elements) == len(held_elements) and all(
            _agrees(r, a) for r, a in zip(elements, held_elements, strict=True)
        )
    return same_value(recorded, actual)


def _changed(recorded: Item | None, actual: Item | None, ignored: set[str]) -> list[str]:
    return [name for name in changed_names(recorded or {}, actual or {}, same=_agrees) if name not in ignored]


class _Expression:
    """Placeholders of one DynamoDB expression: ``#nN`` for names, ``:vN`` for values."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, AttributeValue] = {}

    def name(self, name: str) -> str:
        for placeholder, known in self.names.items():
            if known == name:
                return placeholder
        placeholder = f"#n{len(self.names)}"
        self.names[placeholder] = name
        return placeholder

    def value(self, value: AttributeValue) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = value
        return placeholder

    def parameters(self) -> dict[str, Any]:
        parameters: dict[str, Any] = {"ExpressionAttributeNames": self.names}
        if self.values:
            parameters["ExpressionAttributeValues"] = self.values
        return parameters


def write_back(trail: Trail, key: str, current: Item | None, target: Item | None, operator: str | None) -> str:
    """Write ``target`` (None: delete) only if the item is still ``current``; say what was done.

    An update sets and removes only what differs, under a condition that every attribute read is
    unchanged and every attribute it adds is still absent: an attribute another writer adds
    meanwhile survives. The old item comes back (ALL_OLD), so such a write is reported: Incomplete.
    A change of what it read makes it refuse with nothing written: Refused.
    """
    table_key = trail.typed_key(key)  # the entries' itemKeys: the conditions and the write use the typed key
    item = dict(target) if target is not None else None
    if item is not None and trail.actor_attribute and operator:
        item[trail.actor_attribute] = {"S": operator}  # the rollback declares who made it
    expression = _Expression()
    if current is None:
        condition = f"attribute_not_exists({expression.name(next(iter(table_key)))})"
    else:
        condition = " AND ".join(
            f"{expression.name(name)} = {expression.value(value)}" for name, value in sorted(current.items())
        )
    try:
        if item is None:
            response = trail.dynamodb.delete_item(
                TableName=trail.table, Key=table_key, ConditionExpression=condition, ReturnValues="ALL_OLD",
                **expression.parameters(),
            )  # fmt: skip
            added = _added(current, response.get("Attributes"))
            if added:
                raise Incomplete(
                    f"deleted {key!r}, but a write in between added {added}, which the deletion removed "
                    "with the item (the deletion's audit entry holds its value)"
                )
            return f"deleted {key!r}: it did not exist at that time"
        if current is None:
            trail.dynamodb.put_item(
                TableName=trail.table, Item=item, ConditionExpression=condition, **expression.parameters()
            )
            return f"rolled {key!r} back"
        updates = _update_expression(expression, current, item, table_key.keys())
        if not updates:  # only the stamp differed, and it already names this operator
            return f"{key!r} already holds that: nothing written"
        unread = [f"attribute_not_exists({expression.name(name)})" for name in item if name not in current]
        response = trail.dynamodb.update_item(
            TableName=trail.table, Key=table_key, UpdateExpression=updates, ReturnValues="ALL_OLD",
            ConditionExpression=" AND ".join([condition, *unread]), **expression.parameters(),
        )  # fmt: skip
        added = _added(current, response.get("Attributes"))
        if added:
            raise Incomplete(
                f"rolled {key!r} back, but a write in between added {added}, which is kept: "
                f"{key!r} is not exactly what it held at that time"
            )
        return f"rolled {key!r} back"
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            raise NotDone(f"{key!r} changed while rolling back: nothing written") from error
        raise


def _update_expression(expression: _Expression, current: Item, item: Item, key_names: Collection[str]) -> str:
    """SET what ``item`` holds differently from ``current``, REMOVE what it no longer holds ("": nothing);
    the key attributes are the item's name, never set."""
    sets = [
        f"{expression.name(name)} = {expression.value(value)}"
        for name, value in sorted(item.items())
        if name not in key_names and not (name in current and same_value(current[name], value))
    ]
    removes = [expression.name(name) for name in sorted(current) if name not in item]
    clauses = [f"SET {', '.join(sets)}"] if sets else []
    if removes:
        clauses.append(f"REMOVE {', '.join(removes)}")
    return " ".join(clauses)


def _added(read: Item | None, old: Item | None) -> str:
    """The attributes the item held when written that were not there when read, quoted and listed."""
    return ", ".join(repr(name) for name in sorted((old or {}).keys() - (read or {}).keys()))
