"""Settings: one clear error naming what is missing."""

from __future__ import annotations

import re

import pytest

from chalicelib.settings import (
    UNSET_STREAM_ARN,
    AuditedTable,
    Settings,
    SettingsError,
    UnknownTable,
    stream_arn_for_registration,
)

FULL = {"CONFIGURATION_TABLE_NAME": "Configuration", "AUDIT_TABLE_NAME": "Audit"}


def test_defaults_raise_on_failure_and_publish_nothing() -> None:
    settings = Settings.from_environ(FULL)
    assert settings.report_batch_item_failures is False
    assert settings.change_topic_arn is None and settings.dead_letter_queue_url is None


def test_missing_variables_are_all_named_in_one_message() -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_environ({})
    assert "CONFIGURATION_TABLE_NAME is not set" in str(error.value)
    assert "AUDIT_TABLE_NAME is not set" in str(error.value)


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("TRUE", True), ("false", False), ("", False)])
def test_partial_failure_flag(raw: str, expected: bool) -> None:
    assert Settings.from_environ({**FULL, "REPORT_BATCH_ITEM_FAILURES": raw}).report_batch_item_failures is expected


def test_unreadable_flag_is_named() -> None:
    with pytest.raises(SettingsError, match="REPORT_BATCH_ITEM_FAILURES must be 'true' or 'false', not 'sometimes'"):
        Settings.from_environ({**FULL, "REPORT_BATCH_ITEM_FAILURES": "sometimes"})


def test_registration_uses_a_named_placeholder_when_no_stream_is_set() -> None:
    assert stream_arn_for_registration({}) == UNSET_STREAM_ARN
    assert "CONFIGURATION_STREAM_ARN-is-not-set" in UNSET_STREAM_ARN
    assert stream_arn_for_registration({"CONFIGURATION_STREAM_ARN": "arn:x"}) == "arn:x"


@pytest.mark.parametrize(("raw", "expected"), [("", 4), ("1", 1), ("8", 8), (" 16 ", 16)])
def test_write_concurrency_defaults_to_four(raw: str, expected: int) -> None:
    assert Settings.from_environ({**FULL, "AUDIT_WRITE_CONCURRENCY": raw}).write_concurrency == expected


@pytest.mark.parametrize("raw", ["0", "17", "four", "-2", "2.5"])
def test_unusable_write_concurrency_is_named(raw: str) -> None:
    with pytest.raises(
        SettingsError, match=f"AUDIT_WRITE_CONCURRENCY must be a whole number from 1 to 16, not '{raw}'"
    ):
        Settings.from_environ({**FULL, "AUDIT_WRITE_CONCURRENCY": raw})


def test_redaction_patterns_are_read_as_a_comma_separated_list() -> None:
    settings = Settings.from_environ(
        {**FULL, "REDACT_ATTRIBUTES": " *password*, apiKey ,,", "REDACTION_KEY_PARAMETER": "/p"}
    )
    assert settings.redact_attributes == ("*password*", "apiKey")
    assert settings.redaction_key_parameter == "/p"
    assert Settings.from_environ(FULL).redact_attributes == ()


def test_redaction_without_a_key_parameter_is_refused_by_name() -> None:
    with pytest.raises(SettingsError, match="REDACTION_KEY_PARAMETER is not set, and REDACT_ATTRIBUTES needs it"):
        Settings.from_environ({**FULL, "REDACT_ATTRIBUTES": "*secret*"})


def test_unset_audited_tables_is_the_one_pair_of_the_two_table_names() -> None:
    assert Settings.from_environ(FULL).audited_tables == (AuditedTable("Configuration", "Audit"),)


def test_audited_tables_pair_each_source_with_its_trail_the_first_is_the_default() -> None:
    settings = Settings.from_environ({"AUDITED_TABLES": " Configuration=Audit , FeatureFlags=FeatureFlagsAudit ,"})
    assert settings.audited_tables == (
        AuditedTable("Configuration", "Audit"),
        AuditedTable("FeatureFlags", "FeatureFlagsAudit"),
    )
    assert (settings.configuration_table_name, settings.audit_table_name) == ("Configuration", "Audit")
    assert (
        settings.table(None).source == "Configuration" and settings.table("FeatureFlags").trail == "FeatureFlagsAudit"
    )
    with pytest.raises(
        UnknownTable, match="table 'Orders' is not audited here: AUDITED_TABLES names 'Configuration', 'FeatureFlags'"
    ):
        settings.table("Orders")


@pytest.mark.parametrize(
    ("variables", "problem"),
    [
        (
            {**FULL, "AUDITED_TABLES": "Other=Audit"},
            "AUDITED_TABLES starts with Other=Audit, but CONFIGURATION_TABLE_NAME=Configuration",
        ),
        ({"AUDITED_TABLES": "Configuration"}, "AUDITED_TABLES holds 'Configuration', not SOURCE=TRAIL"),
        ({"AUDITED_TABLES": "A=TA,=TB"}, "AUDITED_TABLES holds '=TB', not SOURCE=TRAIL"),
        ({"AUDITED_TABLES": "A=TA,A=TB"}, "names 'A' or 'TB' twice"),
        ({"AUDITED_TABLES": "A=T,B=T"}, "names 'B' or 'T' twice"),
        ({"AUDITED_TABLES": " , "}, "CONFIGURATION_TABLE_NAME is not set"),
    ],
)
def test_audited_tables_that_cannot_be_used_are_a_settings_error_that_says_why(
    variables: dict[str, str], problem: str
) -> None:
    with pytest.raises(SettingsError, match=re.escape(problem)):
        Settings.from_environ(variables)
