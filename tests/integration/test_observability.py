"""What operators see in CloudWatch: structured logs and embedded-metric-format metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from chalice.test import Client

from tests.conftest import Stack


def emf_metrics(stdout: str) -> dict[str, float]:
    """The metric values of the EMF documents printed by the function."""
    values: dict[str, float] = {}
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        document = json.loads(line)
        if "_aws" not in document:
            continue
        for directive in document["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "ConfigAudit"
            for metric in directive["Metrics"]:
                value = document[metric["Name"]]
                values[metric["Name"]] = sum(value) if isinstance(value, list) else value
    return values


def test_a_batch_reports_its_metrics_in_embedded_metric_format(
    stack: Stack, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    for number in range(30):
        stack.put(f"KEY_{number}", value=number)
    event = stack.new_event()
    poison = dict(event["Records"][0], eventID="poison", eventName="UPSERT")
    event["Records"].append(poison)
    oldest = min(record["dynamodb"]["ApproximateCreationDateTime"] for record in event["Records"])
    capsys.readouterr()
    before = time.time()
    client.lambda_.invoke("audit_producer", event)
    after = time.time()
    metrics = emf_metrics(capsys.readouterr().out)
    assert metrics["Records"] == 31
    assert metrics["Entries"] == 30
    assert metrics["WriteCalls"] == 2
    assert metrics["PoisonRecords"] == 1
    assert metrics["UnprocessedItems"] == 0
    # how far behind the stream the batch is: the oldest record's age when the function ran
    assert (before - oldest) * 1000 <= metrics["IteratorAge"] <= (after - oldest) * 1000
    assert metrics["BatchFailures"] == 0


def test_logs_are_structured_json_with_request_id_cold_start_and_batch_figures(
    stack: Stack, client: Client, logs: Callable[[], list[dict[str, Any]]]
) -> None:
    stack.put("K", value=1)
    stack.put("K", value=2)
    event = stack.new_event()
    oldest = min(record["dynamodb"]["ApproximateCreationDateTime"] for record in event["Records"])
    before = time.time()
    client.lambda_.invoke("audit_producer", event)
    after = time.time()
    [summary] = [line for line in logs() if line["message"] == "batch audited"]
    assert summary["service"] == "config-audit" and summary["level"] == "INFO"
    assert summary["function_request_id"] and "cold_start" in summary
    assert (summary["records"], summary["entries"], summary["writeCalls"]) == (2, 2, 1)
    assert summary["poisonRecords"] == 0
    assert round((before - oldest) * 1000) <= summary["iteratorAgeMs"] <= round((after - oldest) * 1000)


def test_retried_writes_show_in_logs_and_metrics(
    stack: Stack,
    client: Client,
    dynamodb: Any,
    capsys: pytest.CaptureFixture[str],
    logs: Callable[[], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chalicelib import wiring
    from tests.faults import WriteFaults, every

    monkeypatch.setattr("chalicelib.aws_calls.Backoff.delay", lambda self, attempt: 0.0)
    for number in range(25):
        stack.put(f"K{number}", value=number)
    WriteFaults(wiring.client("dynamodb"), dynamodb, every(2, "unprocessed"))
    capsys.readouterr()
    client.lambda_.invoke("audit_producer", stack.new_event())
    metrics = emf_metrics(capsys.readouterr().out)
    [summary] = [line for line in logs() if line["message"] == "batch audited"]
    assert metrics["UnprocessedItems"] > 0 and summary["retriedItems"] == metrics["UnprocessedItems"]
    assert summary["writeCalls"] == metrics["WriteCalls"] > 1


def test_with_metrics_disabled_no_metric_is_ever_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN metrics turned off (the local stack, the demo), and more invocations than a metric keeps values
    from chalicelib.observability import count, invocation

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    capsys.readouterr()
    for _ in range(150):
        with invocation(None):
            count("Records", 1)
    # THEN nothing reaches stdout: values pile up nowhere, and no dump leaks out after the 100th
    assert emf_metrics(capsys.readouterr().out) == {}


def test_a_batchs_metrics_carry_the_audited_table_as_a_dimension(
    stack: Stack, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.put("K", value=1)
    capsys.readouterr()
    client.lambda_.invoke("audit_producer", stack.new_event())
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    [document] = documents
    assert ["service", "table"] in [sorted(d) for d in document["_aws"]["CloudWatchMetrics"][0]["Dimensions"]]
    assert document["table"] == "Configuration"
