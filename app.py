"""Configuration audit trail: the Chalice app. Wiring only; the work is in chalicelib/."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalice import BadRequestError, Chalice, IAMAuthorizer, Response

from chalicelib import wiring
from chalicelib.audit_repository import BadPageToken
from chalicelib.rendering import page_json
from chalicelib.settings import Settings, stream_arn_for_registration

app = Chalice(app_name="config-audit")

# Lambda's default batch; the deploy templates add bisection, retries and partial-failure reporting.
BATCH_SIZE = 100
DEFAULT_LIMIT, MAX_LIMIT = 50, 1000


@app.on_dynamodb_record(
    stream_arn=stream_arn_for_registration(),
    name="audit_producer",
    starting_position="TRIM_HORIZON",
    batch_size=BATCH_SIZE,
)
def audit_producer(event: Any) -> dict[str, Any]:
    """Write the audit entries of one batch of Configuration stream records."""
    producer = wiring.producer_for(Settings.from_environ())
    return producer.handle(event.to_dict(), event.context)


@app.route("/audit/{key}", methods=["GET"], authorizer=IAMAuthorizer())
def audit_history(key: str) -> Response:
    """The entries of one configuration key, newest first: ``{"entries": [...], "next": ...}``."""
    request = app.current_request
    query: Mapping[str, str] = (request.query_params if request is not None else None) or {}
    limit = _limit(query.get("limit"))
    repository = wiring.repository_for(Settings.from_environ())
    try:
        page = repository.history(key, limit, query.get("next") or None)
    except BadPageToken as error:
        raise BadRequestError(str(error)) from error
    return Response(page_json(page.entries, page.next), headers={"Content-Type": "application/json"})


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadRequestError(f"limit must be a whole number from 1 to {MAX_LIMIT}, not {raw!r}")
    return int(raw)
