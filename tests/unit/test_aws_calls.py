"""Calling AWS: failures sorted by what can be done about them, and retries with full jitter."""

from __future__ import annotations

import random
from collections.abc import Collection
from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError, ReadTimeoutError

from chalicelib.aws_calls import Backoff, ConfigurationError, Refused, Reply, RetryLater, call, send_in_groups


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


# -- send_in_groups: one rule for every grouped send -----------------------------------------


class Service:
    """A grouped API: ``deferring`` items come back to be sent again ``times`` times, ``refusing``
    ones are refused for good (inside a call, or the whole call refused), ``down`` fails every call."""

    def __init__(self, deferring: Collection[int] = (), times: int = 1, refusing: Collection[int] = (),
                 whole_call_refused: bool = False, down: bool = False) -> None:  # fmt: skip
        self.deferring, self.times, self.refusing = dict.fromkeys(deferring, times), times, set(refusing)
        self.whole_call_refused, self.down = whole_call_refused, down
        self.calls: list[list[int]] = []
        self.kept: list[int] = []

    def send(self, group: list[int]) -> Reply[int]:
        self.calls.append(list(group))
        if self.down:
            raise RetryLater("ServiceUnavailable")
        if self.whole_call_refused and self.refusing & set(group):
            raise Refused("ValidationException: one item is too large")
        reply: Reply[int] = Reply()
        for item in group:
            if item in self.refusing:
                reply.refused.append((item, "SenderFault"))
            elif self.deferring.get(item, 0) > 0:
                self.deferring[item] -= 1
                reply.deferred.append(item)
            else:
                self.kept.append(item)
        return reply


def quick(attempts: int = 8) -> Backoff:
    return Backoff(max_attempts=attempts, sleep=lambda _: None)


@pytest.mark.parametrize(("count", "calls"), [(0, 0), (1, 1), (10, 1), (11, 2), (25, 3)])
def test_items_go_a_group_a_call(count: int, calls: int) -> None:
    service = Service()
    sent = send_in_groups(list(range(count)), 10, service.send, quick())
    assert service.kept == list(range(count)) and sent.calls == len(service.calls) == calls


def test_deferred_items_are_sent_again_until_they_land() -> None:
    service = Service(deferring={3, 4}, times=2)
    sent = send_in_groups(list(range(10)), 10, service.send, quick())
    assert sorted(service.kept) == list(range(10)) and sent.unsent == [] and sent.retried == 4
    assert service.calls[1:] == [[3, 4], [3, 4]]


@pytest.mark.parametrize("whole_call_refused", [False, True], ids=["refused inside the call", "call refused whole"])
def test_refused_items_are_set_aside_never_resent_and_the_rest_lands(whole_call_refused: bool) -> None:
    service = Service(refusing={5}, whole_call_refused=whole_call_refused)
    sent = send_in_groups(list(range(20)), 10, service.send, quick())
    assert [item for item, _ in sent.refused] == [5] and sent.unsent == []
    assert sorted(service.kept) == [n for n in range(20) if n != 5]
    assert sum(call.count(5) for call in service.calls) == (2 if whole_call_refused else 1)  # split once, then alone


def test_a_group_still_deferred_after_every_attempt_stops_the_send_and_the_rest_is_unsent_in_order() -> None:
    service = Service(deferring={12}, times=100)
    sent = send_in_groups(list(range(35)), 10, service.send, quick(attempts=3))
    assert sent.unsent == [12, *range(20, 35)] and sorted(service.kept) == [n for n in range(20) if n != 12]
    assert len(service.calls) == 1 + 3  # the first group, then the second's three attempts; no third group


def test_a_service_that_is_down_leaves_everything_unsent_after_bounded_attempts() -> None:
    service = Service(down=True)
    sent = send_in_groups(list(range(15)), 10, service.send, quick(attempts=4))
    assert sent.unsent == list(range(15)) and len(service.calls) == 4


def test_a_configuration_error_goes_straight_through() -> None:
    def missing(group: list[int]) -> Reply[int]:
        raise ConfigurationError("Audit table 'Audit' (AUDIT_TABLE_NAME) does not exist")

    with pytest.raises(ConfigurationError, match="AUDIT_TABLE_NAME"):
        send_in_groups([1, 2], 10, missing, quick())


@pytest.mark.parametrize("code", ["BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong"])
def test_a_batch_too_long_for_sns_or_sqs_is_split_not_retried_forever(code: str) -> None:
    # GIVEN a service that takes at most 256 KB a call, and ten messages of 100 KB each
    sent: list[int] = []

    def send(group: list[int]) -> Reply[int]:
        def too_long() -> None:
            raise ClientError(
                {"Error": {"Code": code, "Message": "Batch requests cannot be longer than 262144 bytes"}},
                "PublishBatch",
            )

        if len(group) * 100_000 > 262_144:
            call(too_long, "SNS topic 't' (CHANGE_TOPIC_ARN)")
        sent.extend(group)
        return Reply()

    result = send_in_groups(list(range(10)), 10, send, quick(attempts=3))
    # THEN every message goes, a call each once the batch was refused, and nothing is left
    assert sorted(sent) == list(range(10)) and result.unsent == [] and result.refused == []
