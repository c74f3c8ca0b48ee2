"""Structured JSON logs and CloudWatch metrics in embedded metric format (Powertools for AWS Lambda)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from chalicelib.aws_calls import ConfigurationError

SERVICE = "config-audit"
NAMESPACE = "ConfigAudit"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

_cold_start = True


@contextmanager
def invocation(context: Any) -> Iterator[None]:
    """One invocation: request id and cold start on every log line, metrics flushed at the end."""
    global _cold_start
    logger.append_keys(
        cold_start=_cold_start,
        function_request_id=getattr(context, "aws_request_id", None),
        function_name=getattr(context, "function_name", None),
    )
    metrics.add_metric(name="Invocations", unit=MetricUnit.Count, value=1)
    if _cold_start:
        metrics.add_metric(name="ColdStart", unit=MetricUnit.Count, value=1)
    _cold_start = False
    try:
        yield
    finally:
        metrics.flush_metrics(raise_on_empty_metrics=False)
        # Disabled (POWERTOOLS_METRICS_DISABLED), Powertools flushes nothing and clears nothing, and
        # prints a metric's values anyway once it holds 100: so they are cleared here every time.
        metrics.clear_metrics()


@contextmanager
def misconfiguration_logged() -> Iterator[None]:
    """A ConfigurationError (a missing variable, table, queue or permission) is one ERROR line that
    names it, then raised: Lambda's own report follows with the same message."""
    try:
        yield
    except ConfigurationError as error:
        logger.error(f"misconfigured: {error}", extra={"reason": str(error)})
        raise


def dimension(name: str, value: str) -> None:
    """A dimension on every metric of this invocation (the audited table)."""
    metrics.add_dimension(name=name, value=value)


def count(name: str, value: float) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def iterator_age_ms(oldest_change: float | None) -> float | None:
    """How far behind the stream this batch is: now minus its oldest record's creation time."""
    if oldest_change is None:
        return None
    age = max(0.0, (time.time() - oldest_change) * 1000)
    metrics.add_metric(name="IteratorAge", unit=MetricUnit.Milliseconds, value=age)
    return age
