"""How the function calls AWS: one call, its failure sorted by what can be done about it, and a
bounded backoff with jitter for what a later try may get through.

A failed call is one of three things:

- ``ConfigurationError``: the stage names a resource that is missing or out of the role's reach;
  no retry helps, so it is raised at once with a message naming the stage variable.
- ``Refused``: the service refuses the request for its content (an entry DynamoDB will not store).
- ``RetryLater``: throttled, a server error after botocore's own retries, a timeout; the call may
  or may not have taken effect, which is harmless because every write here is idempotent.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

T = TypeVar("T")


class ConfigurationError(RuntimeError):
    """The stage is set up wrong (a missing table, topic, queue or permission); retrying won't help."""


class CallFailed(Exception):
    """An AWS call that did not take effect (or may not have)."""


class Refused(CallFailed):
    """The service refused the request for its content; sending it again cannot help."""


class RetryLater(CallFailed):
    """The service could not take the request now; a later try may get through."""


_NOT_FOUND = "does not exist (or is not active) in this account and region"
_DENIED = "is not open to the function's role"
_UNKNOWN_CALLER = "cannot be reached with these credentials"

# Error codes that refuse a request for its content: sending it again cannot help. A batch too
# long for SNS or SQS (256 KB a call, whatever the count) is one: send_in_groups splits it.
REFUSALS = {"ValidationException", "BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong"}

# Error codes that name the deployment, not the data, per service.
CONFIGURATION_ERRORS = {
    "ResourceNotFoundException": _NOT_FOUND,  # DynamoDB
    "NotFound": _NOT_FOUND,  # SNS
    "NotFoundException": _NOT_FOUND,
    "AWS.SimpleQueueService.NonExistentQueue": _NOT_FOUND,  # SQS
    "QueueDoesNotExist": _NOT_FOUND,
    "ParameterNotFound": _NOT_FOUND,  # SSM
    "AccessDeniedException": _DENIED,
    "AccessDenied": _DENIED,
    "AuthorizationError": _DENIED,
    "UnrecognizedClientException": _UNKNOWN_CALLER,
    "InvalidClientTokenId": _UNKNOWN_CALLER,
}


def error_code(error: ClientError) -> str:
    """The service's error code of a ClientError ("" where the response carries none)."""
    return str(error.response.get("Error", {}).get("Code", ""))


def call(operation: Callable[..., Any], resource: str, **parameters: Any) -> Any:
    """One AWS call; its failure raised as ConfigurationError, Refused or RetryLater.

    ``resource`` names what is called and the stage variable that names it, for example
    ``"Audit table 'Audit' (AUDIT_TABLE_NAME)"``.
    """
    try:
        return operation(**parameters)
    except ParamValidationError as error:  # botocore's own check of the request, before sending
        raise Refused(str(error)) from error
    except ClientError as error:
        code = error_code(error)
        if code in CONFIGURATION_ERRORS:
            raise ConfigurationError(f"{resource} {CONFIGURATION_ERRORS[code]}: {code}") from error
        if code in REFUSALS:
            raise Refused(str(error.response.get("Error", {}).get("Message", code))) from error
        raise RetryLater(code) from error
    except BotoCoreError as error:  # connection or read timeout: the call may or may not have landed
        raise RetryLater(type(error).__name__) from error


class AwsAdapter:
    """The plumbing every adapter shares: one client, what it calls (for error messages), a backoff."""

    def __init__(self, client: Any, resource: str, backoff: Backoff | None = None) -> None:
        self._client = client
        self._resource = resource  # for example "SNS topic 'arn:…' (CHANGE_TOPIC_ARN)"
        self._backoff = backoff or Backoff()

    def _call(self, operation: str, **parameters: Any) -> Any:
        """One call of the client's ``operation``, its failure sorted as ``call`` sorts it."""
        return call(getattr(self._client, operation), self._resource, **parameters)


@dataclass
class Backoff:
    """Exponential backoff with full jitter, bounded in attempts and in delay.

    Full jitter (a random wait between 0 and the exponential bound) spreads the retries of many
    concurrent functions apart, so they do not throttle the table again in step.
    """

    max_attempts: int = 8
    base_seconds: float = 0.05
    cap_seconds: float = 2.0
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        return self.jitter() * min(self.cap_seconds, self.base_seconds * 2.0**attempt)

    def retry(self, pending: list[T], send: Callable[[list[T]], list[T]]) -> list[T]:
        """Send what is pending until nothing is left or attempts run out; return what is left.

        ``send`` sends a group and returns the part to send again (unprocessed, deferred, failed).
        """
        for attempt in range(1, self.max_attempts + 1):
            pending = send(pending)
            if not pending:
                return []
            if attempt < self.max_attempts:
                self.sleep(self.delay(attempt))
        return pending


# -- many items, a group a call ---------------------------------------------------------------


@dataclass
class Reply(Generic[T]):
    """What one grouped call left to do: items the service deferred, and items it refused for good."""

    deferred: list[T] = field(default_factory=list)
    refused: list[tuple[T, str]] = field(default_factory=list)


@dataclass
class Sent(Generic[T]):
    """What became of a grouped send."""

    unsent: list[T] = field(default_factory=list)  # still deferred after every attempt, or never tried
    refused: list[tuple[T, str]] = field(default_factory=list)  # refused for their content, with why
    calls: int = 0
    retried: int = 0  # items sent again after the service deferred them

    def add(self, other: Sent[T]) -> None:
        self.unsent += other.unsent
        self.refused += other.refused
        self.calls += other.calls
        self.retried += other.retried


def send_in_groups(
    items: Sequence[T],
    size: int,
    send: Callable[[list[T]], Reply[T]],
    backoff: Backoff,
    executor: Executor | None = None,
) -> Sent[T]:
    """Send ``items`` ``size`` a call (BatchWriteItem, PublishBatch, SendMessageBatch), one rule for all:

    - what the service defers (UnprocessedItems, a failed entry that is not the sender's fault, a
      throttled or failed call: ``RetryLater``) is sent again with ``backoff``;
    - what it refuses for its content (``Refused``, a sender fault) is never sent again: a call
      refused whole is split, so that only the items refused on their own are set aside;
    - once a group is still deferred after every attempt, no further group starts: the rest is
      reported unsent, in order, so that the caller can resume from the first of it.

    ``send`` makes one call and says what it left; ``ConfigurationError`` goes straight through.
    With an ``executor``, groups start in order and run side by side; those in flight finish.
    """
    groups = [list(items[start : start + size]) for start in range(0, len(items), size)]
    failed = threading.Event()

    def one_group(group: list[T]) -> Sent[T]:
        outcome: Sent[T] = Sent()
        if failed.is_set():  # an earlier group could not be sent: this one is not tried
            outcome.unsent = group
            return outcome
        try:
            outcome.unsent = backoff.retry(group, lambda pending: _attempt(pending, send, outcome))
        except BaseException:
            failed.set()
            raise
        if outcome.unsent:
            failed.set()
        return outcome

    total: Sent[T] = Sent()
    if executor is None or len(groups) < 2:
        for group in groups:
            total.add(one_group(group))
        return total
    error = None
    for future in [executor.submit(one_group, group) for group in groups]:
        try:
            total.add(future.result())
        except Exception as raised:  # every group is waited for before the first error is raised
            error = error or raised
    if error is not None:
        raise error
    return total


def _attempt(pending: list[T], send: Callable[[list[T]], Reply[T]], outcome: Sent[T]) -> list[T]:
    """One call for ``pending`` (split into one call each where the service refused it whole)."""
    outcome.calls += 1
    try:
        reply = send(pending)
    except Refused as refused:
        if len(pending) == 1:
            outcome.refused.append((pending[0], str(refused)))
            return []
        return [left for item in pending for left in _attempt([item], send, outcome)]
    except RetryLater:
        reply = Reply(deferred=pending)
    outcome.refused += reply.refused
    outcome.retried += len(reply.deferred)
    return reply.deferred


def failed_entries(entries: list[dict[str, Any]], failed: list[dict[str, Any]]) -> Reply[dict[str, Any]]:
    """The ``Failed`` list of SNS PublishBatch or SQS SendMessageBatch: a sender fault is refused
    (the message itself is wrong), any other failure deferred."""
    by_id = {entry["Id"]: entry for entry in entries}
    reply: Reply[dict[str, Any]] = Reply()
    for failure in failed:
        if failure.get("SenderFault"):
            reply.refused.append((by_id[failure["Id"]], f"{failure.get('Code')}: {failure.get('Message')}"))
        else:
            reply.deferred.append(by_id[failure["Id"]])
    return reply
