"""The audit trail of one stage, as an operator reads it: a key's entries with who made each, and
the item the Configuration table holds now."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3

from chalicelib.actors.attribution import with_actors
from chalicelib.actors.repository import DynamoDBActorRepository
from chalicelib.audit.entries import Entry
from chalicelib.audit.records import KEY_ATTRIBUTE
from chalicelib.audit.repository import DynamoDBAuditRepository
from chalicelib.settings import Settings
from config_audit.errors import NotDone
from config_audit.replay import Item, whole_history


class Trail:
    """The audit trail of one stage: its tables, read and written with one set of credentials."""

    def __init__(self, variables: Mapping[str, str], session: dict[str, Any]) -> None:
        """SettingsError (before anything connects) when the stage's variables are not the function's."""
        self.variables = variables
        self.settings = Settings.from_environ(variables)  # the functions' own check: every missing variable named
        self.dynamodb = boto3.client("dynamodb", **session)
        self.audit = DynamoDBAuditRepository(self.dynamodb, self.settings.audit_table_name)
        actors = self.settings.actors_table_name
        self.actors = DynamoDBActorRepository(self.dynamodb, actors) if actors else None
        self.table = self.settings.configuration_table_name
        self.actor_attribute = self.settings.actor_attribute

    def entries(self, key: str) -> list[Entry]:
        """Every entry of ``key``, newest first, with its actor, in attribute-value form."""
        return with_actors(whole_history(self.audit, key), self.actors)

    def known_entries(self, key: str) -> list[Entry]:
        entries = self.entries(key)
        if not entries:
            raise NotDone(f"no history for {key!r}: no change of it was ever audited")
        return entries

    def current(self, key: str) -> Item | None:
        response = self.dynamodb.get_item(TableName=self.table, Key={KEY_ATTRIBUTE: {"S": key}}, ConsistentRead=True)
        item: Item | None = response.get("Item")
        return item
