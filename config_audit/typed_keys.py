"""KEY as the operator types it (the key as text, as the history names it) -> the item's typed key.

    key schema                     KEY                           typed key
    key (S)                        CACHE_TTL_SEC                 {"key": {"S": "CACHE_TTL_SEC"}}
    Id (N)                         101                           {"Id": {"N": "101"}}
    blob (B)                       AAE=                          {"blob": {"B": b"\\x00\\x01"}}
    pk (S, hash), sk (N, range)    {"pk":"tenant-1","sk":7}      {"pk": {"S": "tenant-1"}, "sk": {"N": "7"}}

One key attribute: a string as it is, a number as a number, binary as base64. A hash and a range
key: a JSON object of both (strings as JSON strings, numbers as JSON numbers, binary as base64
strings). The reverse of chalicelib.audit.keys.key_text, which names the item in its trail; a
KEY that does not fit the table's key schema is refused in one line that names the schema.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NoReturn

from chalicelib.attribute_values import SCALARS, AttributeValue, BadAttributeValue
from chalicelib.audit.keys import MAX_KEY_TEXT_BYTES
from chalicelib.aws_calls import call
from config_audit.errors import NotDone
from config_audit.items import checked_key, checked_text, serialized
from config_audit.replay import Item

TYPE_WORDS = {"S": "a string", "N": "a number", "B": "binary"}
EXAMPLES: dict[str, Any] = {"S": "text", "N": 7, "B": "AAE="}
# DynamoDB's limits on a key attribute's value: 2,048 bytes for a partition key, 1,024 for a sort key
MAX_HASH_BYTES, MAX_RANGE_BYTES = MAX_KEY_TEXT_BYTES, 1024


@dataclass(frozen=True)
class KeyAttribute:
    """One attribute of a table's key: its name, its type (S, N or B), and whether it is the hash key."""

    name: str
    type: str
    hash: bool


@dataclass(frozen=True)
class KeySchema:
    """A table's key, as DescribeTable gives it: the hash key, then the range key if there is one."""

    table: str
    attributes: tuple[KeyAttribute, ...]

    def spelled(self) -> str:
        """The schema as an operator reads it: 'pk' (a string) and 'sk' (a number)."""
        return " and ".join(f"{a.name!r} ({TYPE_WORDS[a.type]})" for a in self.attributes)

    def example(self) -> str:
        """A KEY that fits: text, 7, AAE=, or {"pk":"text","sk":7}."""
        if len(self.attributes) == 1:
            return str(EXAMPLES[self.attributes[0].type])
        example = {a.name: EXAMPLES[a.type] for a in sorted(self.attributes, key=lambda a: a.name)}
        return json.dumps(example, ensure_ascii=False, separators=(",", ":"))


def key_schema(dynamodb: Any, table: str) -> KeySchema:
    """The key schema of ``table`` (DescribeTable); ConfigurationError where the table is missing or out of reach."""
    description = call(dynamodb.describe_table, f"table {table!r} (--table, AUDITED_TABLES)", TableName=table)
    types = {d["AttributeName"]: d["AttributeType"] for d in description["Table"]["AttributeDefinitions"]}
    hash_first = sorted(description["Table"]["KeySchema"], key=lambda k: k["KeyType"] != "HASH")
    return KeySchema(
        table,
        tuple(KeyAttribute(k["AttributeName"], types[k["AttributeName"]], k["KeyType"] == "HASH") for k in hash_first),
    )


def typed_key(text: str, schema: KeySchema) -> Item:
    """The typed key KEY names in a table of ``schema``; NotDone naming the schema where it does not fit."""
    checked_key(text)  # not empty, UTF-8, at most 2,048 bytes: what any KEY is

    def refuse(why: str) -> NoReturn:
        raise NotDone(
            f"KEY {text[:80]!r} does not fit table {schema.table!r}, whose key is {schema.spelled()}: "
            f"{why}; give KEY as, for example, {schema.example()}"
        )

    if len(schema.attributes) == 1:
        [attribute] = schema.attributes
        plain: Any = Decimal(text) if attribute.type == "N" and _is_number(text) else text
        return {attribute.name: _value(attribute, plain, refuse)}
    try:
        given = json.loads(
            text, parse_float=Decimal, parse_int=Decimal, parse_constant=lambda c: refuse(f"{c} is no number")
        )
    except (ValueError, RecursionError):
        refuse("it is not a JSON object")
    if not isinstance(given, dict):
        refuse("it is not a JSON object")
    names = [a.name for a in schema.attributes]
    if sorted(given) != sorted(names):
        refuse(
            f"it names {', '.join(repr(n) for n in sorted(given)) or 'nothing'}, not {' and '.join(map(repr, names))}"
        )
    return {a.name: _value(a, given[a.name], refuse) for a in schema.attributes}


def _is_number(text: str) -> bool:
    try:
        SCALARS["N"].check(text)  # DynamoDB's number syntax, as the function checks it
    except BadAttributeValue:
        return False
    return True


def _value(attribute: KeyAttribute, plain: Any, refuse: Callable[[str], NoReturn]) -> AttributeValue:
    """One key attribute's typed value from its plain form (str, Decimal), checked as DynamoDB checks a key."""
    name, limit = attribute.name, MAX_HASH_BYTES if attribute.hash else MAX_RANGE_BYTES
    if attribute.type == "N":
        if not isinstance(plain, Decimal) or not plain.is_finite():
            refuse(f"{name!r} is not a number")
        return serialized(name, plain)  # refused where DynamoDB cannot hold the number exactly
    if not isinstance(plain, str) or not plain:
        refuse(f"{name!r} is not {'a non-empty string' if attribute.type == 'S' else 'base64 text'}")
    if attribute.type == "S":
        checked_text(f"key attribute {name!r}", plain)
        size = len(plain.encode())
        value: AttributeValue = {"S": plain}
    else:
        try:
            raw = base64.b64decode(plain, validate=True)
        except (binascii.Error, ValueError):
            refuse(f"{name!r} is not base64")
        if not raw:
            refuse(f"{name!r} is empty binary")
        size, value = len(raw), {"B": raw}
    if size > limit:
        role = "partition" if attribute.hash else "sort"
        refuse(f"{name!r} is longer than {limit:,} bytes, DynamoDB's limit for a {role} key")
    return value
