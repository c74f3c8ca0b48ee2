"""Calling AWS: failures sorted by what can be done about them, and retries with full jitter."""

from __future__ import annotations

import random
from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError, ReadTimeoutError

from chalicelib.aws_calls import Backoff, ConfigurationError, Refused, RetryLater, call


def failing(error: Exception) -> Any:
    def operation(**_: Any) -> Any:
        raise error

    return operation


def client_error(code: str, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "AnyOperation")


@pytest.mark.parametrize(
    ("error", "raised", "message"),
    [
        (
            client_error("ResourceNotFoundException"),
            ConfigurationError,
            r"Audit table 'A' \(AUDIT_TABLE_NAME\) does not exist",
        ),
        (client_error("AccessDeniedException"), ConfigurationError, "is not open to the function's role"),
        (client_error("NotFound"), ConfigurationError, "does not exist"),
        (client_error("AWS.SimpleQueueService.NonExistentQueue"), ConfigurationError, "does not exist"),
        (client_error("ValidationException", "Item size has exceeded"), Refused, "Item size has exceeded"),
        (ParamValidationError(report="bad type"), Refused, "bad type"),
        (client_error("ProvisionedThroughputExceededException"), RetryLater, "ProvisionedThroughputExceeded"),
        (client_error("InternalServerError"), RetryLater, "InternalServerError"),
        (ReadTimeoutError(endpoint_url="https://x"), RetryLater, "ReadTimeoutError"),
    ],
)
def test_a_failed_call_is_sorted_by_what_can_be_done_about_it(error: Exception, raised: type, message: str) -> None:
    with pytest.raises(raised, match=message):
        call(failing(error), "Audit table 'A' (AUDIT_TABLE_NAME)")


def test_a_successful_call_returns_the_response() -> None:
    assert call(lambda **params: params, "anything", Name="x") == {"Name": "x"}


def always_failing(sends: list[int]) -> Any:
    def send(pending: list[int]) -> list[int]:
        sends.append(len(pending))
        return pending

    return send


def test_retries_wait_a_random_share_of_an_exponential_bound() -> None:
    # GIVEN a backoff with a seeded random jitter, and a call that always fails
    sleeps: list[float] = []
    backoff = Backoff(max_attempts=7, base_seconds=0.05, cap_seconds=2.0, sleep=sleeps.append,
                      jitter=random.Random(7).random)  # fmt: skip
    # WHEN it retries until it gives up
    sends: list[int] = []
    left = backoff.retry([1, 2, 3], always_failing(sends))
    # THEN it tried max_attempts times, waiting between tries only
    assert left == [1, 2, 3] and len(sends) == 7 and len(sleeps) == 6
    bounds = [min(2.0, 0.05 * 2**attempt) for attempt in range(1, 7)]
    # each wait lies under its exponential bound, and is not the bound itself (full jitter)
    assert all(0 <= sleep <= bound for sleep, bound in zip(sleeps, bounds, strict=True))
    assert all(sleep < bound for sleep, bound in zip(sleeps, bounds, strict=True))
    assert len(set(round(sleep / bound, 6) for sleep, bound in zip(sleeps, bounds, strict=True))) == 6


def test_the_jitter_scales_the_exponential_bound_up_to_the_cap() -> None:
    backoff = Backoff(base_seconds=0.05, cap_seconds=2.0, jitter=lambda: 0.5)
    assert [backoff.delay(attempt) for attempt in (1, 2, 3, 6, 10)] == [0.05, 0.1, 0.2, 1.0, 1.0]


def test_retry_stops_as_soon_as_nothing_is_left() -> None:
    sleeps: list[float] = []
    outcomes = iter([[3], []])
    left = Backoff(sleep=sleeps.append).retry([1, 2, 3], lambda pending: next(outcomes))
    assert left == [] and len(sleeps) == 1
