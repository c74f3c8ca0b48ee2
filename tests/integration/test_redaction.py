"""No plain secret anywhere the function writes: the Audit table, its logs, SNS, the dead letters."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice.test import Client

from chalicelib.aws_calls import ConfigurationError
from tests.conftest import AUDIT, REGION, STAGE, Stack, project_with
from tests.integration.test_dead_letters import dead_letters
from tests.integration.test_notifications import Topic

DIGEST = re.compile(r"redacted:hmac-sha256:[0-9a-f]{64}")
# every one is a value of an attribute the dev stage redacts (*password*, *secret*, *token*, apiKey)
SECRETS = ["hunter2-plain", "s3cr3t-plain", "tok-plain-123", "AKIA-plain-key", "nested-plain-pw", "4242424242"]


def everything_written(stack: Stack, topic: Topic, subscription: str, queue: str, logs: list[dict[str, Any]],
                       printed: str) -> str:  # fmt: skip
    """Every byte the function wrote, as text: table items, notifications, dead letters, log lines."""
    items = [page["Items"] for page in stack.dynamodb.get_paginator("scan").paginate(TableName=AUDIT)]
    return "\n".join(
        [
            json.dumps(items, default=repr),
            json.dumps(topic.received(subscription)),
            json.dumps(dead_letters(queue)),
            json.dumps(logs),
            printed,
        ]
    )


def test_no_plain_secret_is_written_anywhere(
    stack: Stack, tmp_path: Path, logs: Callable[[], list[dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    from app import app

    topic = Topic()
    subscription = topic.subscribe("everything")
    queue = str(boto3.client("sqs", region_name=REGION).create_queue(QueueName="dlq")["QueueUrl"])
    project = project_with(tmp_path, CHANGE_TOPIC_ARN=topic.arn, DEAD_LETTER_QUEUE_URL=queue)
    client = Client(app, stage_name="dev", project_dir=project)
    # GIVEN secrets created, changed, reused, nested, and deleted, beside plain settings
    stack.put("DB", host="db.local", dbPassword=SECRETS[0], api_token=SECRETS[2])
    stack.put("DB", host="db.local", dbPassword=SECRETS[1], api_token=SECRETS[2])  # password changed
    stack.put("SERVICE", apiKey=SECRETS[3], config={"retries": 3, "creds": {"password": SECRETS[4]}})
    stack.put("REUSED", anotherPassword=SECRETS[1])  # the same secret as DB's current password
    stack.put("NUMERIC", pin_secret=int(SECRETS[5]))
    stack.delete("SERVICE")
    event = stack.new_event()
    # AND a poison record carrying a secret (a MODIFY without its old image), which is dead-lettered
    poison = json.loads(json.dumps(event["Records"][1]))
    poison.update(eventID="poison-1")
    del poison["dynamodb"]["OldImage"]
    poison["dynamodb"]["SequenceNumber"] = str(int(event["Records"][-1]["dynamodb"]["SequenceNumber"]) + 1)
    event["Records"].append(poison)
    # WHEN the function audits it all
    assert client.lambda_.invoke("audit_producer", event).payload == {"batchItemFailures": []}
    # THEN no plain secret is anywhere it wrote, and digests stand in their place
    written = everything_written(stack, topic, subscription, queue, logs(), capsys.readouterr().out)
    assert [secret for secret in SECRETS if secret in written] == []
    assert DIGEST.search(written) and "poison-1" in written and "db.local" in written
    # AND the history still tells a change of a secret, and a reuse, by equal digests
    entries = {(e["itemKey"], e.get("updatedAttribute", "created" if "newValue" in e else "deleted")): e
               for e in stack.audit_entries()}  # fmt: skip
    changed = entries[("DB", "dbPassword")]
    assert DIGEST.fullmatch(changed["oldValue"]) and DIGEST.fullmatch(changed["newValue"])
    assert changed["oldValue"] != changed["newValue"]
    assert ("DB", "api_token") not in entries  # the token did not change, so its digest did not either
    assert entries[("REUSED", "created")]["newValue"]["anotherPassword"] == changed["newValue"]
    created, deleted = entries[("SERVICE", "created")], entries[("SERVICE", "deleted")]
    assert created["newValue"]["config"]["retries"] == 3
    assert DIGEST.fullmatch(created["newValue"]["config"]["creds"]["password"])
    assert deleted["oldValue"]["apiKey"] == created["newValue"]["apiKey"]


def test_without_the_key_nothing_is_written_and_the_error_names_the_parameter(
    stack: Stack, tmp_path: Path, logs: Callable[[], list[dict[str, Any]]]
) -> None:
    from app import app

    project = project_with(tmp_path, REDACTION_KEY_PARAMETER="/config-audit/nowhere")
    stack.put("DB", dbPassword=SECRETS[0])
    with pytest.raises(ConfigurationError, match=r"SSM parameter '/config-audit/nowhere' \(REDACTION_KEY_PARAMETER\)"):
        Client(app, stage_name="dev", project_dir=project).lambda_.invoke("audit_producer", stack.new_event())
    assert stack.audit_entries() == []
    assert not any(SECRETS[0] in json.dumps(line) for line in logs())


def test_the_dev_stage_redacts_what_the_readme_says() -> None:
    variables = STAGE["environment_variables"]
    assert variables["REDACT_ATTRIBUTES"] == "*password*,*secret*,*token*,apiKey"
    assert variables["REDACTION_KEY_PARAMETER"]


@pytest.mark.parametrize(
    "malformed",
    [
        {"M": {"password": {"S": "hunter2-malformed"}}, "S": "two type tags"},
        {"L": [{"password": {"S": "hunter2-malformed"}}]},  # an untagged map inside a list
    ],
    ids=["two type tags", "untagged map in a list"],
)
def test_a_malformed_poison_record_reaches_logs_and_dead_letters_without_its_secret(
    stack: Stack, tmp_path: Path, logs: Callable[[], list[dict[str, Any]]], malformed: dict[str, Any]
) -> None:
    from app import app

    queue = str(boto3.client("sqs", region_name=REGION).create_queue(QueueName="dlq")["QueueUrl"])
    client = Client(app, stage_name="dev", project_dir=project_with(tmp_path, DEAD_LETTER_QUEUE_URL=queue))
    # GIVEN a forged record whose value the redactor's walk cannot read as attribute values
    stack.put("DB", host="db.local")
    event = stack.new_event()
    event["Records"][0]["dynamodb"]["NewImage"]["config"] = malformed
    # WHEN the function audits it
    assert client.lambda_.invoke("audit_producer", event).payload == {"batchItemFailures": []}
    # THEN it is poison, logged and dead-lettered with its reason, and the secret is in neither
    [letter] = dead_letters(queue)
    errors = [line for line in logs() if line["level"] == "ERROR"]
    assert letter["eventID"] == event["Records"][0]["eventID"] and "bad attribute value" in letter["reason"]
    assert len(errors) == 1 and "bad attribute value" in errors[0]["reason"]
    assert "hunter2-malformed" not in json.dumps([letter, errors])
    assert "db.local" in json.dumps(letter)  # the rest of the record is kept for whoever reads the letter
