"""The stage's environment, read in one place, with errors that name what is wrong."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.aws_calls import ConfigurationError

# A syntactically valid ARN that can never exist: importing app.py with no stream configured
# (unit tests, `chalice local`) must work, and a deploy made with it fails on a name that says why.
UNSET_STREAM_ARN = (
    "arn:aws:dynamodb:us-east-1:000000000000:table/CONFIGURATION_STREAM_ARN-is-not-set/stream/1970-01-01T00:00:00.000"
)

DEFAULT_ACTOR_ATTRIBUTE = "modifiedBy"  # the stamp a writer may put on an item: who it says it is

# BatchWriteItem calls in flight at once; AUDIT_WRITE_CONCURRENCY overrides it per stage
DEFAULT_WRITE_CONCURRENCY = 4
MAX_WRITE_CONCURRENCY = 16

# How long a digest is kept from deletion (Object Lock, compliance mode): 7 years, as the templates default
DEFAULT_DIGEST_RETENTION_DAYS = 2557
MAX_DIGEST_RETENTION_DAYS = 36500  # S3 Object Lock's own limit: 100 years

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no", ""}


class SettingsError(ConfigurationError):
    """The stage's environment is missing a variable or holds a value that cannot be used."""


@dataclass(frozen=True)
class AuditedTable:
    """One audited table and its own trail (an Audit table shaped as SPEC.md's)."""

    source: str
    trail: str


@dataclass(frozen=True)
class Settings:
    """What the function needs to know about its stage; hashable so clients can be cached per value."""

    configuration_table_name: str
    audit_table_name: str
    stream_arn: str | None = None
    report_batch_item_failures: bool = False
    change_topic_arn: str | None = None
    dead_letter_queue_url: str | None = None
    write_concurrency: int = DEFAULT_WRITE_CONCURRENCY
    redact_attributes: tuple[str, ...] = ()
    redaction_key_parameter: str | None = None
    actors_table_name: str | None = None
    actor_attribute: str | None = DEFAULT_ACTOR_ATTRIBUTE
    audited: tuple[AuditedTable, ...] = ()  # empty: the one pair CONFIGURATION_TABLE_NAME=AUDIT_TABLE_NAME
    digest_bucket: str | None = None  # where the producer writes a digest a batch (None: no digests)
    digest_retention_days: int = DEFAULT_DIGEST_RETENTION_DAYS
    failure_bucket: str | None = None  # where Lambda writes a batch it gave up on; read by `config-audit recover`

    @property
    def audited_tables(self) -> tuple[AuditedTable, ...]:
        """Every audited table with its trail; the first is the default of the API and the CLI."""
        return self.audited or (AuditedTable(self.configuration_table_name, self.audit_table_name),)

    def table(self, source: str | None) -> AuditedTable:
        """The audited table named ``source`` (None: the first); UnknownTable otherwise."""
        tables = self.audited_tables
        if source is None:
            return tables[0]
        for table in tables:
            if table.source == source:
                return table
        raise UnknownTable(source, tables)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the stage variables; raise SettingsError naming every missing or bad one."""
        env = os.environ if environ is None else environ
        problems: list[str] = []

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                problems.append(f"{name} is not set")
            return value

        def optional(name: str) -> str | None:
            return env.get(name, "").strip() or None

        def whole_number(name: str, default: int, maximum: int, unit: str = "") -> int:
            """The variable as a whole number from 1 to ``maximum`` (``default`` when unset); else a problem."""
            raw = env.get(name, "").strip() or str(default)
            number = int(raw) if raw.isdigit() and raw.isascii() else 0
            if not 1 <= number <= maximum:
                problems.append(f"{name} must be a whole number {unit}from 1 to {maximum}, not {raw!r}")
            return number

        audited = _audited_tables(env.get("AUDITED_TABLES", ""), problems)
        if audited:  # the first pair stands for CONFIGURATION_TABLE_NAME=AUDIT_TABLE_NAME
            configuration_table = optional("CONFIGURATION_TABLE_NAME") or audited[0].source
            audit_table = optional("AUDIT_TABLE_NAME") or audited[0].trail
            if (configuration_table, audit_table) != (audited[0].source, audited[0].trail):
                problems.append(
                    f"AUDITED_TABLES starts with {audited[0].source}={audited[0].trail}, but CONFIGURATION_TABLE_NAME"
                    f"={configuration_table} and AUDIT_TABLE_NAME={audit_table}: make them agree, or unset the two"
                )
        else:
            configuration_table = required("CONFIGURATION_TABLE_NAME")
            audit_table = required("AUDIT_TABLE_NAME")
        raw_flag = env.get("REPORT_BATCH_ITEM_FAILURES", "").strip().lower()
        if raw_flag not in _TRUE | _FALSE:
            problems.append(f"REPORT_BATCH_ITEM_FAILURES must be 'true' or 'false', not {raw_flag!r}")
        concurrency = whole_number("AUDIT_WRITE_CONCURRENCY", DEFAULT_WRITE_CONCURRENCY, MAX_WRITE_CONCURRENCY)
        redact = tuple(pattern.strip() for pattern in env.get("REDACT_ATTRIBUTES", "").split(",") if pattern.strip())
        key_parameter = optional("REDACTION_KEY_PARAMETER")
        if redact and key_parameter is None:
            problems.append(
                "REDACTION_KEY_PARAMETER is not set, and REDACT_ATTRIBUTES needs it "
                "(the SSM SecureString parameter holding the HMAC key)"
            )
        retention = whole_number(
            "DIGEST_RETENTION_DAYS", DEFAULT_DIGEST_RETENTION_DAYS, MAX_DIGEST_RETENTION_DAYS, "of days "
        )
        if problems:
            raise SettingsError(
                "the stage's environment_variables in .chalice/config.json are incomplete: " + "; ".join(problems)
            )
        return cls(
            configuration_table_name=configuration_table,
            audit_table_name=audit_table,
            stream_arn=optional("CONFIGURATION_STREAM_ARN"),
            report_batch_item_failures=raw_flag in _TRUE,
            change_topic_arn=optional("CHANGE_TOPIC_ARN"),
            dead_letter_queue_url=optional("DEAD_LETTER_QUEUE_URL"),
            write_concurrency=concurrency,
            redact_attributes=redact,
            redaction_key_parameter=key_parameter,
            actors_table_name=optional("ACTORS_TABLE_NAME"),
            actor_attribute=_actor_attribute(env),
            audited=tuple(audited),
            digest_bucket=optional("DIGEST_BUCKET"),
            digest_retention_days=retention,
            failure_bucket=optional("FAILURE_BUCKET"),
        )


class UnknownTable(ConfigurationError):
    """A table no audited pair names: records of it are never dropped, and reading it is refused."""

    def __init__(self, source: str, tables: tuple[AuditedTable, ...]) -> None:
        self.source, self.tables = source, tables
        super().__init__(
            f"table {source!r} is not audited here: AUDITED_TABLES names "
            + ", ".join(repr(table.source) for table in tables)
        )


def _audited_tables(raw: str, problems: list[str]) -> list[AuditedTable]:
    """AUDITED_TABLES: comma-separated SOURCE=TRAIL pairs; a problem for each malformed one."""
    tables: list[AuditedTable] = []
    for pair in (part.strip() for part in raw.split(",")):
        if not pair:
            continue
        source, equals, trail = (part.strip() for part in pair.partition("="))
        if not (equals and source and trail):
            problems.append(f"AUDITED_TABLES holds {pair!r}, not SOURCE=TRAIL")
        elif any(source == t.source for t in tables) or any(trail == t.trail for t in tables):
            problems.append(f"AUDITED_TABLES names {source!r} or {trail!r} twice: each table has its own trail")
        else:
            tables.append(AuditedTable(source, trail))
    for table in tables:  # its entries would be audited into a trail, whose entries...: a loop
        if any(table.source == other.trail for other in tables):
            problems.append(
                f"AUDITED_TABLES names {table.source!r} as an audited table and as a trail: a trail is never audited"
            )
    return tables


def _actor_attribute(env: Mapping[str, str]) -> str | None:
    """ACTOR_ATTRIBUTE: absent, the default stamp ``modifiedBy``; set but empty, no stamp is read."""
    if "ACTOR_ATTRIBUTE" not in env:
        return DEFAULT_ACTOR_ATTRIBUTE
    return env["ACTOR_ATTRIBUTE"].strip() or None


def stream_arn_for_registration(environ: Mapping[str, str] | None = None) -> str:
    """The stream ARN app.py registers with; a named placeholder where the stage sets none."""
    env = os.environ if environ is None else environ
    return env.get("CONFIGURATION_STREAM_ARN", "").strip() or UNSET_STREAM_ARN
