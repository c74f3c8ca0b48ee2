"""Small named errors shared by the edges of the function."""

from __future__ import annotations


class ConfigurationError(RuntimeError):
    """The stage is set up wrong (a missing table, variable or permission); retrying won't help."""


class BatchNotWritten(RuntimeError):
    """Some entries of the batch could not be written; raised so that Lambda retries the batch."""
