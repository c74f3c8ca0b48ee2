"""What an operator's command can end in besides its answer: each is one line on stderr, exit status 1."""

from __future__ import annotations


class NotDone(Exception):
    """What the operator asked cannot be done; the message says why, and nothing was written."""


class Incomplete(Exception):
    """Written, but the table is not exactly what was asked; the message says how."""
