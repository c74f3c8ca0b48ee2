"""Several audited tables of any key schema, through the handler and GET /audit/{key}?table= (moto)."""

from __future__ import annotations

import json
import urllib.parse
import warnings
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice.test import Client

from local.stack import read_audit
from local.stream import read_all
from tests.conftest import AUDIT, REGION, Stack, create_keyed_table, project_with

pytestmark = pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")
FLAGS, FLAGS_AUDIT = "FeatureFlags", "FeatureFlagsAudit"


@pytest.fixture
def flags(stack: Stack) -> Any:
    """A pk/sk table a platform team already has, with its stream, and its own trail."""
    return create_keyed_table(stack.dynamodb, FLAGS, [("pk", "S"), ("sk", "N")], FLAGS_AUDIT)


@pytest.fixture
def both(tmp_path: Path) -> Client:
    from app import app

    return Client(
        app,
        stage_name="dev",
        project_dir=project_with(tmp_path, AUDITED_TABLES=f"Configuration={AUDIT},{FLAGS}={FLAGS_AUDIT}"),
    )


def get(client: Client, path: str) -> tuple[int, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        response = client.http.get(path)
    return response.status_code, json.loads(response.body)


def test_two_tables_are_audited_side_by_side_each_into_its_own_trail(stack: Stack, flags: str, both: Client) -> None:
    # GIVEN a seed change and a composite-key change, in one batch as the poller would interleave them
    stack.put("CACHE_TTL_SEC", value=3600)
    table = boto3.resource("dynamodb", region_name=REGION).Table(FLAGS)
    table.put_item(Item={"pk": "tenant-1", "sk": 7, "enabled": True})
    table.update_item(
        Key={"pk": "tenant-1", "sk": 7}, UpdateExpression="SET enabled = :f", ExpressionAttributeValues={":f": False}
    )
    streams = stack.streams
    records = stack.new_records() + list(read_all(streams, flags))
    # WHEN the function audits them
    assert both.lambda_.invoke("audit_producer", {"Records": records}).payload == {"batchItemFailures": []}
    # THEN the seed's trail holds its entry, exactly as before: no itemKeys
    [seed] = stack.audit_entries()
    assert seed["itemKey"] == "CACHE_TTL_SEC" and "itemKeys" not in seed
    # AND the flags' trail holds the composite-key entries, keyed by the key as text, with the typed key
    created, changed = read_audit(stack.dynamodb, FLAGS_AUDIT)
    assert created["itemKey"] == changed["itemKey"] == '{"pk":"tenant-1","sk":7}'
    assert changed["itemKeys"] == {"pk": "tenant-1", "sk": 7}
    assert (changed["updatedAttribute"], changed["oldValue"], changed["newValue"]) == ("enabled", True, False)
    # AND the history of each reads from its own table, the key given as its text
    key = urllib.parse.quote('{"pk":"tenant-1","sk":7}', safe="")
    status, body = get(both, f"/audit/{key}?table={FLAGS}")
    assert status == 200 and [e["updatedAttribute"] for e in body["entries"][:1]] == ["enabled"]
    assert body["entries"][0]["itemKeys"] == {"pk": "tenant-1", "sk": 7}  # plain JSON
    assert get(both, f"/audit/{key}")[1]["entries"] == []  # the first table's trail does not hold it
    assert len(get(both, "/audit/CACHE_TTL_SEC?table=Configuration")[1]["entries"]) == 1


def test_an_unknown_table_is_a_400_that_lists_the_audited_tables(stack: Stack, flags: str, both: Client) -> None:
    status, body = get(both, "/audit/K?table=Orders")
    assert status == 400
    assert body["Message"] == "table 'Orders' is not audited here: AUDITED_TABLES names 'Configuration', 'FeatureFlags'"
    assert get(both, "/audit/K?table=")[0] == 400


def test_a_token_of_one_tables_history_is_refused_for_another(stack: Stack, flags: str, both: Client) -> None:
    for value in range(3):
        stack.put("K", value=value)
    both.lambda_.invoke("audit_producer", stack.new_event())
    status, body = get(both, "/audit/K?limit=1")
    assert status == 200 and body["next"]
    status, refused = get(both, f"/audit/K?limit=1&table={FLAGS}&next={body['next']}")
    assert status == 400 and "another table" in refused["Message"]


def test_a_call_on_one_table_never_names_an_entry_of_another(stack: Stack, tmp_path: Path) -> None:
    from app import app
    from tests.unit.test_actors import cloudtrail

    # GIVEN the seed table and a numeric-key table, whose keys read alike as text: "1" and 1
    tenants = create_keyed_table(stack.dynamodb, "Tenants", [("Id", "N")], "TenantsAudit")
    client = Client(
        app,
        stage_name="dev",
        project_dir=project_with(tmp_path, AUDITED_TABLES=f"Configuration={AUDIT},Tenants=TenantsAudit"),
    )
    stack.put("1", value="setting")
    boto3.resource("dynamodb", region_name=REGION).Table("Tenants").put_item(Item={"Id": 1, "name": "tenant"})
    records = stack.new_records() + list(read_all(stack.streams, tenants))
    for record in records:
        record["dynamodb"]["ApproximateCreationDateTime"] = 1726045348.0  # the same second
    assert client.lambda_.invoke("audit_producer", {"Records": records}).payload == {"batchItemFailures": []}
    # AND CloudTrail saw alice write the tenant, and nobody write the setting
    event = cloudtrail("PutItem", {"tableName": "Tenants", "key": {"Id": "1"}})
    event["detail"]["userIdentity"] = {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice"}
    assert client.lambda_.invoke("actor_recorder", event).payload == {"recorded": 1}
    # THEN the tenant's entry names alice, and the setting's entry, of the same key text, nobody
    [tenant] = get(client, "/audit/1?table=Tenants")[1]["entries"]
    assert tenant["actor"]["arn"] == "arn:aws:iam::111122223333:user/alice" and tenant["itemKeys"] == {"Id": 1}
    [setting] = get(client, "/audit/1")[1]["entries"]
    assert "actor" not in setting and "actorCandidates" not in setting
