"""config-audit as an operator runs it: the installed command against the local stack's moto server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from local.stack import LocalStack
from tests.conftest import ACTORS, ROOT

pytestmark = pytest.mark.slow

COMMAND = str(Path(sys.executable).with_name("config-audit"))


def test_a_local_put_prints_only_its_answer_on_stdout() -> None:
    with LocalStack() as stack:
        # WHEN the operator puts a setting on the local stack (which plays CloudTrail in process)
        done = subprocess.run(
            [COMMAND, "--endpoint", stack.endpoint, "put", "K", "1"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        # THEN stdout is the answer alone: actor_recorder's log line is not on it
        assert (done.returncode, done.stdout, done.stderr) == (0, "put 'K'\n", "")
        # AND CloudTrail's part was still played: the call is recorded for K
        recorded = stack.dynamodb.scan(TableName=ACTORS)["Items"]
        assert [item["itemKey"]["S"] for item in recorded] == ["Configuration#K"]  # <table>#<key>
