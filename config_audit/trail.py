"""The audit trail of one audited table of a stage, as an operator reads it: a key's entries with
who made each, and the item the table holds now."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3

from chalicelib.actors.attribution import with_actors
from chalicelib.actors.repository import DynamoDBActorRepository
from chalicelib.audit.entries import Entry
from chalicelib.audit.repository import DynamoDBAuditRepository
from chalicelib.settings import Settings
from config_audit.errors import NotDone
from config_audit.replay import Item, key_of, whole_history


class Trail:
    """The audit trail of one audited table: the table and its trail, read and written with one set of credentials."""

    def __init__(self, variables: Mapping[str, str], session: dict[str, Any], source: str | None = None) -> None:
        """The trail of the audited table ``source`` (None: the stage's first). Before anything connects:
        SettingsError when the stage's variables are not the function's, UnknownTable (listing the
        audited tables) for a table the stage does not audit."""
        self.variables = variables
        self.settings = Settings.from_environ(variables)  # the functions' own check: every missing variable named
        audited = self.settings.table(source)
        self.dynamodb = boto3.client("dynamodb", **session)
        self.audit = DynamoDBAuditRepository(self.dynamodb, audited.trail)
        actors = self.settings.actors_table_name
        self.actors = DynamoDBActorRepository(self.dynamodb, actors) if actors else None
        self.table = audited.source
        self.actor_attribute = self.settings.actor_attribute
        self._keys: dict[str, Item] = {}  # typed keys, as the entries read so far give them

    def entries(self, key: str) -> list[Entry]:
        """Every entry of ``key``, newest first, with its actor, in attribute-value form."""
        return with_actors(whole_history(self.audit, key), self.actors, self.table)

    def known_entries(self, key: str) -> list[Entry]:
        """``entries``, or NotDone when there are none."""
        entries = self.entries(key)
        if not entries:
            raise NotDone(f"no history for {key!r}: no change of it in table {self.table!r} was ever audited")
        self._keys[key] = key_of(entries[0])
        return entries

    def typed_key(self, key: str) -> Item:
        """The item's key attributes, typed, as its entries give them (key is the key as text)."""
        if key not in self._keys:
            self.known_entries(key)
        return self._keys[key]

    def current(self, key: str) -> Item | None:
        """What the table holds under ``key`` now (a consistent read), or None."""
        response = self.dynamodb.get_item(TableName=self.table, Key=self.typed_key(key), ConsistentRead=True)
        item: Item | None = response.get("Item")
        return item
