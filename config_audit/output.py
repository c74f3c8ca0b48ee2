"""``--output json|csv``: what a reading command prints for scripts (``table`` is render.py's).

    what            json (JSON Lines)                          csv (a header row, RFC 4180 quoting)
    an entry        the API's rendering of it, one a line       ENTRY_COLUMNS, one row an entry
    a difference    shaped as an entry: itemKey, and            DIFFERENCE_COLUMNS, one row a difference
                    updatedAttribute / oldValue / newValue
    an item (at)    the item as the API renders an image,       attribute,value: one row an attribute
                    or null when there was none

Values in csv cells are JSON, as the API writes them (numbers digit for digit, "text" quoted),
so that 1 and "1" stay apart; an absent value is an empty cell. JSON lines never hold a control
character (JSON's escapes, and \\uXXXX: the same JSON value); csv cells hold the stored text as
it is, except on a terminal, where each is escaped as render.printable escapes it.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from chalicelib.attribute_values import AttributeValue, changed_names, deserialize_image, item_json
from chalicelib.audit.entries import Entry, change_kind
from config_audit.render import printable

FORMATS = ("table", "json", "csv")
ENTRY_COLUMNS = (
    "time", "table", "key", "change", "attribute", "actor", "actor_source", "old", "new", "id", "sequence_number",
)  # fmt: skip
DIFFERENCE_COLUMNS = ("key", "change", "attribute", "old", "new")
ITEM_COLUMNS = ("attribute", "value")

Item = dict[str, AttributeValue]


def value_json(value: AttributeValue) -> str:
    """One attribute value as the API writes it inside an entry (numbers exact, sets sorted)."""
    wrapped = item_json({"v": value})  # '{"v":<value>}': the API's one renderer, for one value
    return wrapped[len('{"v":') : -1]


def entry_line(entry: Entry) -> str:
    """An entry (attribute-value form, actors joined) as one JSON line: the API's rendering of it."""
    # outside strings JSON is printable ASCII, so escaping the whole line keeps the same JSON value
    return printable(item_json(entry))


def entry_row(entry: Entry, table: str | None = None) -> list[str]:
    """An entry's ENTRY_COLUMNS; ``table``: the audited table, where the entry has no ``tableName``."""
    source = entry["tableName"]["S"] if "tableName" in entry else table or ""
    actor, actor_source = _actor(entry)
    return [
        entry["modificationTime"]["S"],
        source,
        entry["itemKey"]["S"],
        change_kind(entry).value,
        entry["updatedAttribute"]["S"] if "updatedAttribute" in entry else "",
        actor,
        actor_source,
        value_json(entry["oldValue"]) if "oldValue" in entry else "",
        value_json(entry["newValue"]) if "newValue" in entry else "",
        entry["id"]["S"],
        entry.get("sequenceNumber", {}).get("S", ""),
    ]


def _actor(entry: Entry) -> tuple[str, str]:
    """(ARN, source) of the entry's actor; its candidates' ARNs, space-separated, and "candidates"."""
    shown = deserialize_image({name: entry[name] for name in ("actor", "actorCandidates") if name in entry})
    if "actor" in shown:
        return str(shown["actor"]["arn"]), str(shown["actor"]["source"])
    if "actorCandidates" in shown:
        return " ".join(str(candidate["arn"]) for candidate in shown["actorCandidates"]), "candidates"
    return "", ""


def difference_entries(key: str, before: Item | None, after: Item | None) -> list[Entry]:
    """How ``after`` differs from ``before``, as entries without time or actor: the whole item
    created or deleted, or one entry per attribute (in name order) added, changed or removed."""
    item_key = {"itemKey": {"S": key}}
    if before is None and after is None:
        return []
    if before is None:
        return [{**item_key, "newValue": {"M": after}}]
    if after is None:
        return [{**item_key, "oldValue": {"M": before}}]
    found: list[Entry] = []
    for name in changed_names(before, after):
        entry: Entry = {**item_key, "updatedAttribute": {"S": name}}
        if name in before:
            entry["oldValue"] = before[name]
        if name in after:
            entry["newValue"] = after[name]
        found.append(entry)
    return found


def difference_row(difference: Entry) -> list[str]:
    """A difference's DIFFERENCE_COLUMNS."""
    return [
        difference["itemKey"]["S"],
        change_kind(difference).value,
        difference["updatedAttribute"]["S"] if "updatedAttribute" in difference else "",
        value_json(difference["oldValue"]) if "oldValue" in difference else "",
        value_json(difference["newValue"]) if "newValue" in difference else "",
    ]


def item_line(item: Item | None) -> str:
    """An item as one JSON line (``null``: there was none)."""
    return "null" if item is None else printable(item_json(item))


def item_rows(item: Item | None) -> list[list[str]]:
    """An item's ITEM_COLUMNS rows, attributes in name order (none: there was no item)."""
    return [[name, value_json(item[name])] for name in sorted(item)] if item is not None else []


def csv_text(header: Sequence[str], rows: Iterable[Sequence[str]], terminal: bool) -> str:
    """A header row and the rows, quoted as RFC 4180 quotes (CRLF after each row)."""
    buffer = io.StringIO()
    write_csv(buffer, header, rows, terminal)
    return buffer.getvalue()


def write_csv(stream: Any, header: Sequence[str], rows: Iterable[Sequence[str]], terminal: bool = False) -> int:
    """Write the header and each row to the text ``stream`` as they come; the number of rows."""
    writer = csv.writer(stream)  # RFC 4180: fields with a comma, quote or line break quoted, quotes doubled
    writer.writerow(header)
    count = 0
    for row in rows:
        writer.writerow(cells(row, terminal))
        count += 1
    return count


def cells(row: Sequence[str], terminal: bool = False) -> list[str]:
    """A row's cells as written: escaped for a terminal; otherwise as stored, but for a lone
    surrogate (no UTF-8 encodes one), which is escaped."""
    return [printable(cell) for cell in row] if terminal else [_encodable(cell) for cell in row]


def json_text(lines: Iterable[str]) -> str:
    """JSON Lines: each line followed by a newline (nothing at all for no line)."""
    return "".join(line + "\n" for line in lines)


def _encodable(cell: str) -> str:
    """The cell as it is, unless it holds a lone surrogate (no UTF-8 encodes one): then escaped."""
    try:
        cell.encode("utf-8")
    except UnicodeEncodeError:
        return printable(cell)
    return cell


def rows_of(entries: Iterable[Entry], table: str | None = None) -> Iterator[list[str]]:
    """ENTRY_COLUMNS rows of the entries, as they come."""
    return (entry_row(entry, table) for entry in entries)


# -- a command's answer in a form for scripts ------------------------------------------------------


def entries_answer(entries: Iterable[Entry], form: str, table: str | None = None) -> str:
    """Entries in the order given, as JSON Lines or CSV; ``table``: the audited table they are of,
    where they carry no ``tableName``."""
    if form == "json":
        return json_text(entry_line(entry) for entry in entries)
    return csv_text(ENTRY_COLUMNS, rows_of(entries, table), sys.stdout.isatty())


def item_answer(item: Item | None, form: str) -> str:
    """An item (None: there was none) as one JSON line, or CSV rows of its attributes."""
    if form == "json":
        return item_line(item) + "\n"
    return csv_text(ITEM_COLUMNS, item_rows(item), sys.stdout.isatty())


def differences_answer(key: str, before: Item | None, after: Item | None, form: str) -> str:
    """How ``after`` differs from ``before``, as JSON Lines of entry-shaped differences, or CSV."""
    found = difference_entries(key, before, after)
    if form == "json":
        return json_text(item_line(difference) for difference in found)
    return csv_text(DIFFERENCE_COLUMNS, (difference_row(difference) for difference in found), sys.stdout.isatty())
