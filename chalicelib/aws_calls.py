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
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

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
        if code == "ValidationException":
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
