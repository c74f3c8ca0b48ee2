"""config-audit as an operator runs it: the installed command against the local stack's moto server."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.stack import LocalStack
from tests.conftest import ACTORS, CONFIGURATION, ROOT

pytestmark = pytest.mark.slow

COMMAND = str(Path(sys.executable).with_name("config-audit"))


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack() as running:
        yield running


def recorded_keys(stack: LocalStack) -> list[str]:
    """The keys AuditActors holds a write call for: what actor_recorder was handed."""
    return sorted(item["itemKey"]["S"] for item in stack.dynamodb.scan(TableName=ACTORS)["Items"])


def configuration_keys(stack: LocalStack) -> list[str]:
    return sorted(item["key"]["S"] for item in stack.dynamodb.scan(TableName=CONFIGURATION)["Items"])


def test_a_local_put_prints_only_its_answer_on_stdout(stack: LocalStack) -> None:
    # WHEN the operator puts a setting on the local stack (which plays CloudTrail in process)
    done = subprocess.run(
        [COMMAND, "--endpoint", stack.endpoint, "put", "K", "1"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    # THEN stdout is the answer alone: actor_recorder's log line is not on it
    assert (done.returncode, done.stdout, done.stderr) == (0, "put 'K'\n", "")
    # AND CloudTrail's part was still played: the call is recorded for K
    assert "Configuration#K" in recorded_keys(stack)  # <table>#<key>


# The CLI's own process, asked afterwards which modules it loaded.
PROBE = """
import json, sys
from config_audit.cli import main
code = main(sys.argv[1:])
heavy = ("chalice", "chalice.test", "blessed", "inquirer", "app", "local")
print(json.dumps([name for name in heavy if name in sys.modules]), file=sys.stderr)
raise SystemExit(code)
"""


def test_a_local_write_hands_cloudtrails_event_over_without_loading_chalice(stack: LocalStack) -> None:
    # WHEN the operator writes on the local stack
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "--endpoint", stack.endpoint, "put", "PROBED", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    # THEN chalice's test client (and the terminal libraries it pulls in) never loaded
    assert (done.returncode, done.stdout) == (0, "put 'PROBED'\n"), done.stderr
    assert json.loads(done.stderr) == []
    # AND the call is still recorded, as actor_recorder records it
    assert "Configuration#PROBED" in recorded_keys(stack)


def test_a_key_that_is_not_utf8_never_reaches_the_server(stack: LocalStack) -> None:
    # WHEN the operator's shell passes a byte that is not UTF-8 ($'\xff')
    done = subprocess.run(
        [COMMAND, "--endpoint", stack.endpoint, "put", b"\xff", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # THEN one line says so, and the server was never asked (it answers as before, holding nothing new)
    assert (done.returncode, done.stdout) == (1, "")
    assert (
        done.stderr
        == "config-audit: KEY is not UTF-8 text (the byte 0xff is not UTF-8): DynamoDB keeps text as UTF-8\n"
    )
    assert "\udcff" not in configuration_keys(stack) and "\ufffd" not in "".join(configuration_keys(stack))
