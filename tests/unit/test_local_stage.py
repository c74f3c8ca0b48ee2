"""The local stage (`make run`, `make demo`): the dev stage's variables, more audited tables, a failure bucket."""

from __future__ import annotations

from chalicelib.settings import AuditedTable, Settings
from config_audit.connection import LOCAL_FAILURE_BUCKET
from config_audit.stage import stage_environment
from local.stack import LOCAL_STAGE, LOCAL_TABLE_KEYS, local_table
from tests.conftest import ROOT


def test_the_local_stage_is_the_dev_stage_with_a_composite_and_a_numeric_key_table_audited_beside_the_seed() -> None:
    dev, local = stage_environment("dev", ROOT), stage_environment(LOCAL_STAGE, ROOT)
    # every dev variable as dev has it, so the seed's table behaves locally as in dev
    assert {name: local[name] for name in dev} == dev
    # beside the seed's table, two more; the digests (DIGEST_BUCKET: a bucket in moto) dev does not write;
    assert set(local) - set(dev) == {"AUDITED_TABLES", "DIGEST_BUCKET", "FAILURE_BUCKET"}
    # and the bucket its poller keeps a batch it gives up on in, which `config-audit --local recover` reads
    assert local["FAILURE_BUCKET"] == LOCAL_FAILURE_BUCKET
    first, *others = Settings.from_environ(local).audited_tables
    assert first == AuditedTable(dev["CONFIGURATION_TABLE_NAME"], dev["AUDIT_TABLE_NAME"])
    assert others == [AuditedTable("FeatureFlags", "FeatureFlagsAudit"), AuditedTable("Tenants", "TenantsAudit")]
    # and the local stack knows how to make it: hash key pk, range key sk, a stream with both images
    made = local_table("FeatureFlags")
    assert [(k["AttributeName"], k["KeyType"]) for k in made["KeySchema"]] == [("pk", "HASH"), ("sk", "RANGE")]
    assert made["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert set(LOCAL_TABLE_KEYS) >= {table.source for table in others}
    assert [(k["AttributeName"], k["KeyType"]) for k in local_table("Tenants")["KeySchema"]] == [("Id", "HASH")]
