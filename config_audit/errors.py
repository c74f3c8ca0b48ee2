"""What an operator's command can end in besides its answer: each is one line on stderr, exit status 1.

And an answer whose exit status is not 0 (``verify`` finding tampering: the findings on stdout, 3).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    """A command's answer (printed on stdout) with the exit status it ends in."""

    text: str
    status: int = 0


class NotDone(Exception):
    """What the operator asked cannot be done; the message says why, and nothing was written."""


class Incomplete(Exception):
    """Written, but the table is not exactly what was asked; the message says how."""
