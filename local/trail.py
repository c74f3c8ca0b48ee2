"""Renders audit entries as a table a person reads: time, key, change, old -> new."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from chalicelib.changes import change_kind


def describe_change(entry: dict[str, Any]) -> str:
    """created, updated <attribute>, deleted or expired."""
    kind = change_kind(entry).value
    return f"{kind} {entry['updatedAttribute']}" if kind == "updated" else kind


def show(value: Any) -> str:
    def default(o: Any) -> Any:
        if isinstance(o, Decimal):
            return int(o) if o == o.to_integral_value() else float(o)
        if isinstance(o, set):
            return sorted(o, key=str)
        return str(o)

    return json.dumps(value, default=default, sort_keys=True)


def render_table(entries: list[dict[str, Any]]) -> str:
    rows = [("time", "key", "change", "old -> new")]
    for entry in entries:
        old = show(entry["oldValue"]) if "oldValue" in entry else "-"
        new = show(entry["newValue"]) if "newValue" in entry else "-"
        rows.append((entry["modificationTime"], entry["itemKey"], describe_change(entry), f"{old} -> {new}"))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3]
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
