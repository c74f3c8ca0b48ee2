"""Shared fixtures: AWS faked by moto, the two tables, a stream reader, the Chalice test client."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import shutil
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from chalice.test import Client
from moto import mock_aws

from chalicelib import wiring
from chalicelib.attribute_values import deserialize_image
from chalicelib.observability import logger
from infra.redaction_key import ensure_redaction_key
from infra.tables import audit_table, create_tables, keyed_table
from local.stack import read_audit
from local.stream import read_all

ROOT = Path(__file__).resolve().parent.parent
EVENTS = Path(__file__).resolve().parent / "events"
REGION = "us-east-1"
STAGE = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]["dev"]
CONFIGURATION = STAGE["environment_variables"]["CONFIGURATION_TABLE_NAME"]
AUDIT = STAGE["environment_variables"]["AUDIT_TABLE_NAME"]
REDACTION_KEY_PARAMETER = STAGE["environment_variables"]["REDACTION_KEY_PARAMETER"]
ACTORS = STAGE["environment_variables"]["ACTORS_TABLE_NAME"]


def load_event(name: str) -> dict[str, Any]:
    """A Lambda event kept as a file under tests/events/."""
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def plain(item: dict[str, Any]) -> dict[str, Any]:
    """An item in attribute-value form -> Python values (numbers as Decimal, exact)."""
    return deserialize_image(item)


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture(autouse=True)
def _fresh_wiring() -> Iterator[None]:
    """Collaborators are cached per process, as in Lambda; each test gets its own."""
    wiring.clear()
    yield
    wiring.clear()


@pytest.fixture
def logs() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The function's structured log lines so far, parsed, as CloudWatch would show them."""
    buffer = io.StringIO()
    handler = logger.registered_handler
    original = handler.setStream(buffer)  # type: ignore[attr-defined]
    try:
        yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line]
    finally:
        handler.setStream(original)  # type: ignore[attr-defined]


class Stack:
    """The Configuration and Audit tables in moto, and the Configuration stream read as Lambda would."""

    def __init__(self, dynamodb: Any, streams: Any) -> None:
        self.dynamodb = dynamodb
        self.streams = streams
        self.stream_arn = create_tables(dynamodb, CONFIGURATION, AUDIT, ACTORS)
        # the dev stage redacts secrets with a key from SSM, as a provisioned stage does
        ensure_redaction_key(boto3.client("ssm", region_name=REGION), REDACTION_KEY_PARAMETER)
        resource = boto3.resource("dynamodb", region_name=REGION)
        self.configuration = resource.Table(CONFIGURATION)
        self._seen: set[str] = set()

    def put(self, key: str, **attributes: Any) -> None:
        self.configuration.put_item(Item={"key": key, **attributes})

    def delete(self, key: str) -> None:
        self.configuration.delete_item(Key={"key": key})

    def new_records(self) -> list[dict[str, Any]]:
        """Stream records not handed out before, in Lambda's shape, in order."""
        fresh = [record for record in read_all(self.streams, self.stream_arn) if record["eventID"] not in self._seen]
        self._seen.update(record["eventID"] for record in fresh)
        return fresh

    def new_event(self) -> dict[str, Any]:
        return {"Records": self.new_records()}

    def audit_entries(self) -> list[dict[str, Any]]:
        """Every Audit entry, as Python values, in (sequenceNumber, updatedAttribute) order."""
        return read_audit(self.dynamodb, AUDIT)


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def dynamodb(aws: None) -> Any:
    return boto3.client("dynamodb", region_name=REGION)


def streams_client() -> Any:
    # in-process moto serves DynamoDB Streams only with account-id endpoints off
    return boto3.client("dynamodbstreams", region_name=REGION, config=Config(account_id_endpoint_mode="disabled"))


@pytest.fixture
def stack(dynamodb: Any) -> Stack:
    return Stack(dynamodb, streams_client())


@contextlib.contextmanager
def fresh_stack() -> Iterator[Stack]:
    """A Stack in a moto of its own, for tests (hypothesis examples) that need one per example."""
    with mock_aws():
        wiring.clear()
        try:
            yield Stack(boto3.client("dynamodb", region_name=REGION), streams_client())
        finally:
            wiring.clear()


@pytest.fixture
def client() -> Client:
    """chalice.test.Client on the dev stage of the project itself."""
    return Client(_app(), stage_name="dev", project_dir=str(ROOT))


def _app() -> Any:
    from app import app

    return app


def create_keyed_table(dynamodb: Any, name: str, keys: list[tuple[str, str]], trail: str | None = None) -> str:
    """A table a team already has (any key schema, its stream on), and its trail; its stream ARN."""
    dynamodb.create_table(**keyed_table(name, keys))
    if trail is not None:
        dynamodb.create_table(**audit_table(trail))
    return str(dynamodb.describe_table(TableName=name)["Table"]["LatestStreamArn"])


def project_with(tmp_path: Path, **variables: str | None) -> str:
    """A copy of the project's .chalice with the dev stage's variables changed (None removes)."""
    target = tmp_path / "project"
    shutil.copytree(ROOT / ".chalice", target / ".chalice")
    config_path = target / ".chalice" / "config.json"
    config = json.loads(config_path.read_text())
    env = config["stages"]["dev"]["environment_variables"]
    for name, value in variables.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    config_path.write_text(json.dumps(config))
    return str(target)


@pytest.fixture
def partial_client(tmp_path: Path) -> Client:
    """The dev stage as the deploy templates set it up: partial batch failures reported."""
    return Client(_app(), stage_name="dev", project_dir=project_with(tmp_path, REPORT_BATCH_ITEM_FAILURES="true"))


def seed_event() -> dict[str, Any]:
    return copy.deepcopy(load_event("seed.json"))


__all__ = ["Decimal", "Stack", "load_event", "plain", "project_with", "seed_event"]
