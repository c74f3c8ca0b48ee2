"""Configuration audit trail: the Chalice app. Wiring only; the work is in chalicelib/."""

from __future__ import annotations

from typing import Any

from chalice import Chalice

from chalicelib import wiring
from chalicelib.settings import Settings, stream_arn_for_registration

app = Chalice(app_name="config-audit")

# Lambda's default batch; the deploy templates add bisection, retries and partial-failure reporting.
BATCH_SIZE = 100


@app.on_dynamodb_record(
    stream_arn=stream_arn_for_registration(),
    name="audit_producer",
    starting_position="TRIM_HORIZON",
    batch_size=BATCH_SIZE,
)
def audit_producer(event: Any) -> dict[str, Any]:
    """Write the audit entries of one batch of Configuration stream records."""
    producer = wiring.producer_for(Settings.from_environ())
    return producer.handle(event.to_dict())
