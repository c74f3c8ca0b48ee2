"""Configuration audit trail: the Chalice app. Wiring only; the work is in chalicelib/."""

from __future__ import annotations

from typing import Any

from chalice import BadRequestError, Chalice, IAMAuthorizer, Response

from chalicelib import changes_api, history_api, wiring
from chalicelib.actors.attribution import with_actors
from chalicelib.actors.cloudtrail import WRITE_CALLS
from chalicelib.audit.changes import encode_position
from chalicelib.audit.entries import sort_key
from chalicelib.audit.repository import BadPageToken
from chalicelib.aws_calls import RetryLater
from chalicelib.observability import misconfiguration_logged
from chalicelib.producers import stream_registrations
from chalicelib.settings import Settings, UnknownTable, stream_arn_for_registration

app = Chalice(app_name="config-audit")

# Lambda's default batch; the deploy templates add bisection, retries and partial-failure reporting.
BATCH_SIZE = 100
JSON: dict[str, str | list[str]] = {"Content-Type": "application/json"}
BUSY = {"Code": "ServiceUnavailable", "Message": "the Audit table is busy; try again"}


@app.on_dynamodb_record(
    stream_arn=stream_arn_for_registration(),
    name="audit_producer",
    starting_position="TRIM_HORIZON",
    batch_size=BATCH_SIZE,
)
def audit_producer(event: Any) -> dict[str, Any]:
    """Write the audit entries of one batch of an audited table's stream records."""
    with misconfiguration_logged():
        producer = wiring.producer_for(Settings.from_environ())
        return producer.handle(event.to_dict(), event.context)


# Every other audited table's stream (AUDITED_TABLES): Chalice deploys one function per
# registration, so each is an audit_producer of its own, named after its table (chalicelib/producers.py).
for _function, _stream_arn in stream_registrations()[1:]:
    app.on_dynamodb_record(
        stream_arn=_stream_arn, name=_function, starting_position="TRIM_HORIZON", batch_size=BATCH_SIZE
    )(audit_producer.func)


@app.route("/audit/{key}", methods=["GET"], authorizer=IAMAuthorizer())
def audit_history(key: str) -> Response:
    """The entries of one configuration key, newest first: ``{"entries": [...], "next": ...}``."""
    request = app.current_request
    try:
        wanted = history_api.parse(key, request.query_params if request is not None else None)
        settings = Settings.from_environ()
        table = settings.table(wanted.table).source
        page = wiring.repository_for(settings, table).history(wanted.key, wanted.limit, wanted.next_token)
        rendered = history_api.fitting(with_actors(page.entries, wiring.actors_for(settings), table))
    except (history_api.BadRequest, BadPageToken, UnknownTable) as error:
        raise BadRequestError(str(error)) from error
    except RetryLater:
        return Response(BUSY, status_code=503)
    return Response(history_api.page_json(rendered, page.cut(len(rendered)).next), headers=JSON)


@app.route("/changes", methods=["GET"], authorizer=IAMAuthorizer())
def changes() -> Response:
    """The entries of every key in a time window, newest first, with actors and ``tableName``."""
    request = app.current_request
    try:
        settings = Settings.from_environ()
        wanted = changes_api.parse(request.query_params if request is not None else None, settings)
        page = wiring.changes_for(settings).page(wanted.query, wanted.limit, wanted.next_token)
        rendered = history_api.fitting(page.entries)
    except (history_api.BadRequest, BadPageToken, UnknownTable) as error:
        raise BadRequestError(str(error)) from error
    except RetryLater:
        return Response(BUSY, status_code=503)
    next_token = page.next
    if len(rendered) < len(page.entries):  # the body's size cut the page: resume after what fitted
        next_token = encode_position(sort_key(page.entries[len(rendered) - 1]), wanted.query)
    return Response(history_api.page_json(rendered, next_token), headers=JSON)


@app.on_cw_event(
    {
        "source": ["aws.dynamodb"],
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {"eventName": sorted(WRITE_CALLS)},  # reads never reach the function
    },
    name="actor_recorder",
)
def actor_recorder(event: Any) -> dict[str, int]:
    """Keep who called each write on the audited tables, from CloudTrail's data events."""
    with misconfiguration_logged():
        return wiring.recorder_for(Settings.from_environ()).handle(event.to_dict())
