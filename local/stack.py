"""The whole flow on one machine: a moto server on 127.0.0.1, every audited table with its trail,
the stream poller feeding the Chalice handler, and the on-failure bucket the poller keeps a batch it
gives up on in, as Lambda's S3 destination would. Used by `make demo`, `make run`, the end-to-end
tests and benchmarks."""

from __future__ import annotations

import logging
import os
import threading
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
from botocore.config import Config
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.server import ThreadedMotoServer

from chalicelib import wiring
from chalicelib.attribute_values import deserialize_image
from chalicelib.audit.entries import sequence_order
from chalicelib.settings import AuditedTable, Settings
from config_audit.connection import LOCAL_FAILURE_BUCKET, REGION, client_arguments, environment
from config_audit.stage import stage_environment
from infra.digest_bucket import ensure_digest_bucket
from infra.policy import function_name
from infra.redaction_key import ensure_redaction_key
from infra.tables import audit_table, create_tables, keyed_table
from local.cloudtrail import CloudTrailPlayer, identity_of
from local.poller import Checkpoint, S3Destination, StreamPoller

ROOT = Path(__file__).resolve().parent.parent

# `make run` and `make demo`: the dev stage's variables, plus a composite-key table audited beside
# the seed's (AUDITED_TABLES). The dev stage stays one table: tests feed it records with no ARN.
LOCAL_STAGE = "local"

# The key schemas of the tables the local stack makes beside the seed's: a deployment adopts
# tables that exist, while a fresh moto has none, so each one's key is written down here.
LOCAL_TABLE_KEYS: dict[str, tuple[tuple[str, str], ...]] = {
    "FeatureFlags": (("pk", "S"), ("sk", "S")),  # (name, type) of the hash key, then the range key
    "Tenants": (("Id", "N"),),  # a numeric key, as AWS's own samples key on Id
}


class UnknownLocalTable(ValueError):
    """The stage audits a table whose key schema the local stack does not know."""


def local_table(name: str) -> dict[str, Any]:
    """CreateTable arguments for an audited table of LOCAL_TABLE_KEYS, its stream carrying both images."""
    if name not in LOCAL_TABLE_KEYS:
        raise UnknownLocalTable(
            f"the local stack cannot create table {name!r} (AUDITED_TABLES): it knows the key schema of "
            + ", ".join(map(repr, LOCAL_TABLE_KEYS))
            + " only; add the table's keys to LOCAL_TABLE_KEYS in local/stack.py"
        )
    return keyed_table(name, LOCAL_TABLE_KEYS[name])


def chalice_invoker(stage: str, function: str = "audit_producer") -> Any:
    """Invoke a function the way Lambda would, through chalice.test.Client (stage variables set)."""
    from chalice.test import Client

    from app import app

    client = Client(app, stage_name=stage, project_dir=str(ROOT))
    return lambda event: client.lambda_.invoke(function, event).payload


def planned_entries(event: dict[str, Any]) -> int:
    """How many entries a batch makes, for the poller's progress line (pure, no I/O)."""
    from chalicelib.audit.plan import plan_batch

    return sum(len(changes.entries) for changes in plan_batch(event).records)


class LocalStack:
    """moto server + every audited table and trail + poller; a context manager that stops all it started."""

    def __init__(self, stage: str = "dev", port: int = 0, checkpoint: Path | None = None) -> None:
        self.stage = stage
        self.variables = stage_environment(stage, ROOT)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access line per request otherwise
        self._checkpoint = checkpoint
        self._saved_env: dict[str, str | None] = {}
        self.poller: StreamPoller | None = None
        self._thread: threading.Thread | None = None
        self._settings = Settings.from_environ(self.variables)  # a stage that cannot run fails before anything starts
        self.audited: tuple[AuditedTable, ...] = self._settings.audited_tables
        # the first is the seed's (CONFIGURATION_TABLE_NAME=AUDIT_TABLE_NAME), made by infra.tables.create_tables
        self._others = [(local_table(other.source), audit_table(other.trail)) for other in self.audited[1:]]
        # the stage's FAILURE_BUCKET, or the one `config-audit --local recover` reads where a stage names none
        self.failure_bucket = self._settings.failure_bucket or LOCAL_FAILURE_BUCKET

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> LocalStack:
        self._server.start()
        try:
            self._set_up()
        except BaseException:  # the server started, so it stops, whatever failed after it
            self.__exit__(None, None, None)
            raise
        return self

    def _set_up(self) -> None:
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        # moto's backends are per process: start from nothing, whatever ran here before
        urllib.request.urlopen(
            urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST"), timeout=10
        ).close()
        # boto3 in this process, the handler included, talks to moto through these; clients the
        # handler cached for another endpoint are dropped
        self._set_env(environment(self.endpoint))
        wiring.clear()
        self.dynamodb = self.client("dynamodb")
        self.streams = self.client("dynamodbstreams")
        seed = self.audited[0]
        self.stream_arn = create_tables(self.dynamodb, seed.source, seed.trail, self.variables.get("ACTORS_TABLE_NAME"))
        self.stream_arns = {seed.source: self.stream_arn}  # every audited table's, by name
        for source, trail in self._others:
            self.stream_arns[source["TableName"]] = self._create(source, trail)
        # versioned, as the stack's on-failure bucket is
        self.client("s3").create_bucket(Bucket=self.failure_bucket)
        self.client("s3").put_bucket_versioning(
            Bucket=self.failure_bucket, VersioningConfiguration={"Status": "Enabled"}
        )
        if self.variables.get("REDACTION_KEY_PARAMETER"):  # a key in moto's SSM, as provisioning makes one
            ensure_redaction_key(self.client("ssm"), self.variables["REDACTION_KEY_PARAMETER"])
        if self._settings.digest_bucket:  # Object Lock in compliance mode, as the templates make it
            ensure_digest_bucket(self.client("s3"), self._settings.digest_bucket, self._settings.digest_retention_days)
        # one resource, so one client: CloudTrail played on the seed table's client sees every table's writes
        self._resource = boto3.resource("dynamodb", endpoint_url=self.endpoint, region_name=REGION)
        self.configuration = self.table()

    def _create(self, source: dict[str, Any], trail: dict[str, Any]) -> str:
        """Create an audited table and its trail; the table's stream ARN."""
        for definition in (source, trail):
            self.dynamodb.create_table(**definition)
            self.dynamodb.get_waiter("table_exists").wait(
                TableName=definition["TableName"], WaiterConfig={"Delay": 1, "MaxAttempts": 60}
            )
        return str(self.dynamodb.describe_table(TableName=source["TableName"])["Table"]["LatestStreamArn"])

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop_poller()
        self._server.stop()
        wiring.clear()
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def use_stage_environment(self) -> None:
        """The stage's variables in os.environ until the stack stops, as `chalice local` sets them."""
        self._set_env(self.variables)

    def threads(self) -> dict[str, threading.Thread]:
        """The threads that serve: the moto server's, and the poller's once started."""
        serving = {"the moto server": self._server._thread}
        if self._thread is not None:
            serving["the poller"] = self._thread
        return {name: thread for name, thread in serving.items() if thread is not None}

    def _set_env(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            config=Config(account_id_endpoint_mode="disabled"),
        )

    # -- the poller -------------------------------------------------------------------------

    def start_poller(self, invoke: Any = None, **options: Any) -> StreamPoller:
        from app import BATCH_SIZE

        options.setdefault("batch_size", BATCH_SIZE)
        # what Lambda's mapping does with a batch it gives up on: the record, whole, into the bucket
        producer = (
            f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT_ID}:function:{function_name(self.stage, 'audit_producer')}"
        )
        options.setdefault("destination", S3Destination(self.client("s3"), self.failure_bucket, producer))
        self.poller = StreamPoller(
            self.streams,
            list(self.stream_arns.values()),
            invoke or chalice_invoker(self.stage),
            checkpoint=Checkpoint(self._checkpoint),
            count_entries=planned_entries,
            **options,
        )
        self._thread = self.poller.start()
        return self.poller

    def stop_poller(self, timeout: float = 30.0) -> None:
        if self.poller is not None and self._thread is not None:
            self.poller.stop()
            self._thread.join(timeout)
            self.poller = self._thread = None

    def play_cloudtrail(self, client: Any) -> None:
        """Each write ``client`` makes reaches actor_recorder as CloudTrail would deliver it."""
        identity = identity_of(self.client("sts"))
        CloudTrailPlayer(chalice_invoker(self.stage, "actor_recorder"), identity, REGION).attach(client)

    def session(self) -> dict[str, Any]:
        """boto3 client arguments for this stack's moto server."""
        return client_arguments(self.endpoint)

    # -- the tables ---------------------------------------------------------------------------

    def table(self, source: str | None = None) -> Any:
        """An audited table (None: the first, the seed's) as a boto3 Table resource."""
        return self._resource.Table(self.audited_table(source).source)

    def audit_entries(self, source: str | None = None) -> list[dict[str, Any]]:
        """Every entry of an audited table's trail (None: the first's) as Python values, oldest first."""
        return read_audit(self.dynamodb, self.audited_table(source).trail)

    def audited_table(self, source: str | None = None) -> AuditedTable:
        """The audited table named ``source`` (None: the first) and its trail; UnknownTable otherwise."""
        return self._settings.table(source)


def read_audit(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    """Every entry of an Audit table as Python values, in (sequenceNumber, updatedAttribute) order.

    A scan: for the demo and the tests, which want the whole table; the product reads by key.
    """
    items = [item for page in dynamodb.get_paginator("scan").paginate(TableName=table) for item in page["Items"]]
    return [deserialize_image(item) for item in sorted(items, key=sequence_order)]
