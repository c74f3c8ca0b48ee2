"""Which function audits which table: one audit_producer per audited stream, named after its table."""

from __future__ import annotations

import re

import pytest

from chalicelib.producers import Producer, producer_function, producers, stream_registrations
from chalicelib.settings import UNSET_STREAM_ARN

ARN = "arn:aws:dynamodb:eu-central-1:905418349556:table/"
ONE = {"CONFIGURATION_TABLE_NAME": "Configuration", "AUDIT_TABLE_NAME": "Audit",
       "CONFIGURATION_STREAM_ARN": f"{ARN}Configuration/stream/1"}  # fmt: skip
SEVERAL = {
    **ONE,
    "AUDITED_TABLES": "Configuration=Audit,FeatureFlags=FeatureFlagsAudit,tenant.settings=TenantAudit",
    "AUDITED_STREAM_ARNS": f"{ARN}Configuration/stream/1,{ARN}FeatureFlags/stream/2,{ARN}tenant.settings/stream/3",
}


def test_one_table_registers_app_pys_one_function_as_ever() -> None:
    assert stream_registrations(ONE) == [("audit_producer", f"{ARN}Configuration/stream/1")]
    # the seed's stream ARN carries a prefixed table name: with one table it is taken as it is
    seed = {**ONE, "CONFIGURATION_STREAM_ARN": f"{ARN}cmtr-134cb1e3-Configuration-test/stream/2024"}
    assert stream_registrations(seed) == [("audit_producer", seed["CONFIGURATION_STREAM_ARN"])]


@pytest.mark.parametrize(
    "env",
    [{}, {"AUDITED_TABLES": "Configuration"}, {**SEVERAL, "AUDIT_TABLE_NAME": "Other"}],
    ids=["nothing set", "a pair without a trail", "a first pair that disagrees"],
)
def test_a_stage_that_cannot_be_read_registers_one_function_and_never_raises_at_import(env: dict[str, str]) -> None:
    # importing app.py must work with any environment; the function then names what is wrong
    [(function, stream)] = stream_registrations(env)
    assert function == "audit_producer"
    assert stream == env.get("CONFIGURATION_STREAM_ARN", UNSET_STREAM_ARN)


def test_several_tables_register_one_function_per_stream_each_named_after_its_table() -> None:
    registrations = stream_registrations(SEVERAL)
    assert registrations[:2] == [
        ("audit_producer", f"{ARN}Configuration/stream/1"),
        ("audit_producer-FeatureFlags", f"{ARN}FeatureFlags/stream/2"),
    ]
    function, stream = registrations[2]
    assert (
        re.fullmatch(r"audit_producer-tenant-setti-[0-9a-f]{6}", function)
        and stream == f"{ARN}tenant.settings/stream/3"
    )
    assert producers(SEVERAL)[1] == Producer(
        "audit_producer-FeatureFlags", "FeatureFlags", "FeatureFlagsAudit", f"{ARN}FeatureFlags/stream/2"
    )


def test_a_table_whose_stream_is_not_recorded_registers_a_stream_that_names_it() -> None:
    # a deploy made with it fails on a name that says why, as with CONFIGURATION_STREAM_ARN unset
    env = {**SEVERAL, "AUDITED_STREAM_ARNS": f"{ARN}Configuration/stream/1"}
    assert stream_registrations(env)[1] == (
        "audit_producer-FeatureFlags",
        "arn:aws:dynamodb:us-east-1:000000000000:table/AUDITED_STREAM_ARNS-lacks-FeatureFlags/stream/1970-01-01T00:00:00.000",
    )


@pytest.mark.parametrize(
    "tables",
    [("FeatureFlags", "Feature.Flags", "Feature-Flags"), ("a" * 255, "a" * 254 + "b"), ("x.y", "x-y", "x_y")],
    ids=["dots", "long", "separators"],
)
def test_every_table_gets_a_function_name_of_its_own_that_lambda_and_iam_accept(tables: tuple[str, ...]) -> None:
    names = [producer_function(table) for table in tables]
    assert len(set(names)) == len(names)
    for name in names:
        # config-audit-<stage>-<name> is at most 64 characters for a stage name of up to 15
        assert re.fullmatch(r"[A-Za-z0-9_-]+", name) and len(name) <= 64 - len("config-audit-") - 1 - 15
    assert producer_function("FeatureFlags") == "audit_producer-FeatureFlags"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AUDITED_TABLES": "A=B,C"}, "AUDITED_TABLES holds 'C', not SOURCE=TRAIL"),
        ({"AUDITED_TABLES": "A=B,A=C"}, "AUDITED_TABLES names 'A' or 'C' twice"),
        ({"AUDITED_TABLES": "A=B", "CONFIGURATION_TABLE_NAME": "X"}, "AUDITED_TABLES starts with A=B, but"),
        ({"AUDITED_TABLES": "A=B,B=C"}, "AUDITED_TABLES names 'B' as an audited table and as a trail"),
        ({"CONFIGURATION_TABLE_NAME": "X"}, "AUDIT_TABLE_NAME is not set"),
    ],
)
def test_a_stage_whose_tables_cannot_be_read_is_an_error_naming_what_is_wrong(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        producers(env)
