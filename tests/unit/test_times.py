"""Operator times: ISO 8601 with a zone, or relative to now; every other text one message naming both forms."""

from __future__ import annotations

import datetime as dt

import pytest

from config_audit.errors import NotDone
from config_audit.times import check_order, hour_before, parse_time

NOW = dt.datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", "2030-01-01T12:00:00.123Z"),
        ("90s", "2030-01-01T11:58:30.123Z"),
        ("15m", "2030-01-01T11:45:00.123Z"),
        ("2h", "2030-01-01T10:00:00.123Z"),
        ("7d", "2029-12-25T12:00:00.123Z"),
        ("2024-09-11T11:03:00.25+02:00", "2024-09-11T09:03:00.250Z"),
    ],
)
def test_a_time_is_iso_8601_with_a_zone_or_relative_to_now(text: str, expected: str) -> None:
    assert parse_time(text, NOW) == expected


@pytest.mark.parametrize("text", ["0s", "0d", "1w", "-5m", "5 m", "1.5h", "2H", "h", "yesterday", "now-1h", ""])
def test_anything_else_is_refused_with_a_message_naming_both_forms(text: str) -> None:
    with pytest.raises(NotDone) as refused:
        parse_time(text, NOW)
    assert str(refused.value) == (
        f"time {text!r} is not ISO 8601 with a zone, such as 2024-09-11T09:03:00Z, or relative to now: "
        "now, 90s, 15m, 2h or 7d (a positive whole number and s, m, h or d)"
    )


@pytest.mark.parametrize("text", ["750000d", "99999999999999999999999999s", "9" * 5000 + "d"])
def test_a_relative_time_before_year_0001_is_out_of_range(text: str) -> None:
    with pytest.raises(NotDone, match="is outside the times the history holds"):
        parse_time(text, NOW)


def test_the_oldest_relative_time_the_format_holds_is_read() -> None:
    assert parse_time("739000d", NOW).startswith("0006-")  # a year before 1000 keeps its four digits


def test_from_after_to_is_refused_and_the_same_moment_is_not() -> None:
    check_order("2024-09-11T09:00:00.000Z", "2024-09-11T09:00:00.000Z", "--from", "--to")
    with pytest.raises(NotDone, match=r"^--from 2024-09-11T10:00:00.000Z is after --to 2024-09-11T09:00:00.000Z"):
        check_order("2024-09-11T10:00:00.000Z", "2024-09-11T09:00:00.000Z", "--from", "--to")


def test_the_default_window_starts_an_hour_before_its_end_and_never_before_year_0001() -> None:
    assert hour_before("2024-09-11T00:30:00.000Z") == "2024-09-10T23:30:00.000Z"
    assert hour_before("0001-01-01T00:30:00.000Z") == "0001-01-01T00:00:00.000Z"
