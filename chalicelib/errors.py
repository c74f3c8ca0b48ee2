"""Small named errors shared by the edges of the function."""

from __future__ import annotations

from botocore.exceptions import ClientError


class ConfigurationError(RuntimeError):
    """The stage is set up wrong (a missing table, variable or permission); retrying won't help."""


class BatchNotWritten(RuntimeError):
    """Some entries of the batch could not be written; raised so that Lambda retries the batch."""


def error_code(error: ClientError) -> str:
    """The service's error code of a ClientError ("" where the response carries none)."""
    return str(error.response.get("Error", {}).get("Code", ""))
