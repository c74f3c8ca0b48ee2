"""Secrets are never stored in plain (SPEC.md, "Trust: Redacted").

``REDACT_ATTRIBUTES`` names attributes by case-insensitive shell patterns (``*password*,apiKey``).
Their values, at the top level of an item or under a map key at any depth, are replaced by
``{"S": "redacted:hmac-sha256:<64 hex digits>"}``: the HMAC-SHA256, under a key kept in SSM, of
the value's fingerprint (its type and its DynamoDB value). Equal values give equal digests and
different ones different digests, so a changed secret is still a change and a reused one shows.

The records are redacted before anything reads their images (routing and chunking read only a
record's ARN and sequence number), so entries, logs, notifications and dead letters only ever
hold the digest. The item's key attributes (the names in ``Keys``) are never redacted: they are
the item's identity, which the history is read by.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import re
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any

from chalicelib.attribute_values import AttributeValue, fingerprint
from chalicelib.audit.records import KEY_ATTRIBUTE

PREFIX = "redacted:hmac-sha256:"
MIN_KEY_BYTES = 16


class Redactor:
    """Replaces matching attributes' values by their digest; with no patterns it changes nothing."""

    def __init__(self, patterns: Sequence[str] = (), key: Callable[[], bytes] | None = None) -> None:
        if patterns and key is None:
            raise ValueError("a Redactor with patterns needs a key")
        # one expression for all patterns: a name is matched once, however many patterns there are
        self._names = re.compile("|".join(fnmatch.translate(p) for p in patterns), re.IGNORECASE) if patterns else None
        self._verdicts: dict[str, bool] = {}  # attribute names repeat across records: each is matched once
        self._read_key = key

    @property
    def enabled(self) -> bool:
        return self._names is not None

    @cached_property
    def _key(self) -> bytes:  # read once per container, and only where something is redacted
        assert self._read_key is not None
        return self._read_key()

    def matches(self, name: str) -> bool:
        """Whether an attribute of this name is redacted (shell patterns, any case)."""
        if name not in self._verdicts:
            self._verdicts[name] = self._names is not None and self._names.match(name) is not None
        return self._verdicts[name]

    def digest(self, value: Any) -> AttributeValue:
        """The value's stand-in: equal for equal DynamoDB values, and nothing of the value shown."""
        return {"S": self._text(value)}

    def _text(self, value: Any) -> str:
        return PREFIX + hmac.new(self._key, fingerprint(value), hashlib.sha256).hexdigest()

    def event(self, event: Any) -> Any:
        """A Lambda event with every record's images redacted.

        The key is read first, so an unreadable key fails the batch before anything is written.
        A part that is not the shape it should be is replaced whole by its digest's text: it stays
        malformed (so its poison reason stays true), and nothing of it is shown.
        """
        if not self.enabled:
            return event
        _ = self._key
        if not isinstance(event, dict) or not isinstance(event.get("Records"), list):
            return self._text(event)
        return {**event, "Records": [self.record(record) for record in event["Records"]]}

    def record(self, record: Any) -> Any:
        if not isinstance(record, dict):
            return self._text(record)
        body = record.get("dynamodb")
        if body is None:
            return record
        if not isinstance(body, dict):
            return {**record, "dynamodb": self._text(body)}
        keys = body.get("Keys")
        key_names = frozenset(keys) if isinstance(keys, dict) else frozenset({KEY_ATTRIBUTE})
        images = {
            name: self.image(body[name], key_names) for name in ("OldImage", "NewImage") if body.get(name) is not None
        }
        if all(images[name] is body[name] for name in images):
            return record  # nothing to redact: the record goes on as it came, uncopied
        return {**record, "dynamodb": {**body, **images}}

    def image(self, image: Any, key_names: frozenset[str] = frozenset({KEY_ATTRIBUTE})) -> Any:
        """An image with matching attributes digested, looking inside maps and lists; the very
        same object where nothing matches. The item's key attributes are never digested: they are
        its identity, which the history is read by."""
        if not isinstance(image, dict):
            return self._text(image)
        return self._members(image, key_names)

    def _members(self, members: dict[str, Any], key_names: frozenset[str] = frozenset()) -> dict[str, Any]:
        redacted = {}
        for name, value in members.items():
            secret = self.matches(name) and name not in key_names
            redacted[name] = self.digest(value) if secret else self._inside(value)
        return members if all(redacted[name] is members[name] for name in members) else redacted

    def _inside(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            if isinstance(value.get("M"), dict):
                members = self._members(value["M"])
                return value if members is value["M"] else {"M": members}
            if isinstance(value.get("L"), list):
                elements = [self._inside(member) for member in value["L"]]
                return value if all(e is m for e, m in zip(elements, value["L"], strict=True)) else {"L": elements}
            if next(iter(value)) in _LEAF_TAGS and not _holds_objects(value):
                return value  # a scalar or a set: no attribute name inside it
        # Malformed (two type tags, an untagged map in a list, ...): the walk above cannot tell
        # names from values here, so a part naming a secret anywhere inside goes whole.
        return self._text(value) if self._names_a_secret(value) else value

    def _names_a_secret(self, part: Any) -> bool:
        """Whether any object key at any depth of a malformed part matches a pattern."""
        if isinstance(part, dict):
            return any(self.matches(str(name)) or self._names_a_secret(member) for name, member in part.items())
        if isinstance(part, list):
            return any(self._names_a_secret(member) for member in part)
        return False


_LEAF_TAGS = frozenset({"S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS"})


def _holds_objects(value: dict[str, Any]) -> bool:
    payload = next(iter(value.values()))
    return isinstance(payload, dict) or (isinstance(payload, list) and any(isinstance(m, dict | list) for m in payload))


NO_REDACTION = Redactor()
