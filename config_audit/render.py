"""What an operator reads: entries as a table, items and differences as JSON.

Stored text (keys, values, times, ARNs) never reaches the terminal as a control character: it is
printed escaped as JSON escapes it, and what JSON leaves raw as \\uXXXX.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import Binary

from chalicelib.attribute_values import changed_names, deserialize_image
from chalicelib.audit.entries import change_kind
from config_audit.replay import Item

AttributePath = tuple[str | int, ...]  # map member names and list indices, from the top-level attribute down


def _json_escape(character: str) -> str:
    code = ord(character)
    if code > 0xFFFF:  # JSON spells a character beyond the BMP as its UTF-16 surrogate pair
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every character a terminal would not print as itself JSON-escaped (\\uXXXX)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _json_escape(c) for c in text)


def escaped(text: str) -> str:
    """Stored text as it stands inside a JSON string: quotes, backslashes and controls escaped."""
    return printable(json.dumps(text, ensure_ascii=False)[1:-1])


def key_cell(text: str) -> str:
    """A key as text, escaped as ``escaped`` does but with its quotes as they are, so that a key of
    two attributes reads (and is typed back) as its JSON: {"pk":"tenant-1","sk":7}."""
    return escaped(text).replace('\\"', '"')  # JSON writes no bare quote in a string, so each \" is one


def show(value: Any) -> str:
    """A plain value as JSON, numbers digit for digit, with no control character in it (JSON's
    escapes, and \\uXXXX)."""
    # outside strings the JSON is printable ASCII only, so escaping the whole text keeps it JSON
    return printable(_json(value))


def _json(value: Any) -> str:
    """JSON of a deserialized item's values, keys sorted; a number as DynamoDB holds it (never
    through a float, which would round 1.2345678901234567890 to 17 digits); binary as base64."""
    if isinstance(value, dict):
        members = sorted(value.items())
        return "{" + ", ".join(f"{json.dumps(str(name), ensure_ascii=False)}: {_json(v)}" for name, v in members) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_json(member) for member in value) + "]"
    if isinstance(value, set | frozenset):
        return _json(sorted(value, key=lambda member: member.value if isinstance(member, Binary) else member))
    if isinstance(value, Decimal):
        return str(int(value)) if value == value.to_integral_value() else str(value)
    if isinstance(value, Binary):  # as the key text and the API write binary: base64
        return json.dumps(base64.b64encode(value.value).decode())
    if value is None or isinstance(value, bool | int | str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(str(value), ensure_ascii=False)


def who(entry: dict[str, Any]) -> str:
    if "actor" in entry:
        actor = entry["actor"]
        return f"{escaped(str(actor['arn']))} ({escaped(str(actor['source']))})"
    if "actorCandidates" in entry:
        return "one of " + ", ".join(escaped(str(candidate["arn"])) for candidate in entry["actorCandidates"])
    return "-"


def render_table(entries: Sequence[dict[str, Any]], with_table: bool = False) -> str:
    """Plain-value entries, in the order given, as a table a person reads: time, key, change, who,
    old -> new; ``with_table``: each entry's ``tableName`` after its time (changes across tables)."""
    header = ("time", "table", "key", "change", "who") if with_table else ("time", "key", "change", "who")
    rows = [(*header, "old -> new")]
    for entry in entries:
        kind = change_kind(entry).value
        change = f"{kind} {escaped(str(entry['updatedAttribute']))}" if "updatedAttribute" in entry else kind
        old = show(entry["oldValue"]) if "oldValue" in entry else "-"
        new = show(entry["newValue"]) if "newValue" in entry else "-"
        time, key = escaped(str(entry["modificationTime"])), key_cell(str(entry["itemKey"]))
        table = (escaped(str(entry.get("tableName", "-"))),) if with_table else ()
        rows.append((time, *table, key, change, who(entry), f"{old} -> {new}"))
    last = len(header)  # old -> new, unpadded: it is as long as the values are
    widths = [max(len(row[i]) for row in rows) for i in range(last)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:last], widths, strict=True)) + "  " + row[last]
             for row in rows]  # fmt: skip
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def differences(before: Item | None, after: Item | None) -> list[str]:
    """Lines that say how ``after`` differs from ``before`` (attribute-value items)."""
    if before is None and after is None:
        return []
    if before is None:
        return [f"+ created: {show(deserialize_image(after or {}))}"]
    if after is None:
        return [f"- deleted: {show(deserialize_image(before))}"]
    lines = []
    for name in changed_names(before, after):
        old, new = before.get(name), after.get(name)
        if old is None:
            lines.append(f"+ {escaped(name)}: {show(_plain(new))}")
        elif new is None:
            lines.append(f"- {escaped(name)}: {show(_plain(old))}")
        else:
            lines.append(f"~ {escaped(name)}: {show(_plain(old))} -> {show(_plain(new))}")
    return lines


def _plain(value: Any) -> Any:
    return deserialize_image({"v": value})["v"]


_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def spelled_path(path: AttributePath) -> str:
    """An attribute path as an operator reads it: config.password, servers[0].password, a["b.c"]."""
    spelled = ""
    for step in path:
        if isinstance(step, int):
            spelled += f"[{step}]"
        elif _PLAIN_NAME.fullmatch(step):
            spelled += f".{step}" if spelled else step
        else:
            spelled += f'["{escaped(step)}"]'
    return spelled
