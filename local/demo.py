"""`make demo`: the seed scenario through the whole local flow, printed as an audit trail, and beside
it one change of a composite-key table (the local stage audits both)."""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from chalicelib.actors.attribution import with_actors
from chalicelib.attribute_values import deserialize_image
from chalicelib.audit.keys import key_text
from chalicelib.audit.repository import DynamoDBAuditRepository
from chalicelib.observability import SERVICE
from chalicelib.settings import AuditedTable
from config_audit import cli
from config_audit.errors import Answer
from config_audit.render import differences, render_table
from config_audit.replay import whole_history
from config_audit.rollback import plan_rollback, write_back
from config_audit.trail import Trail
from config_audit.verify import Window, verify
from local.stack import LOCAL_STAGE, LocalStack

TIMEOUT_SECONDS = 30.0

FLAGS = "FeatureFlags"  # the composite-key table (hash pk, range sk) the local stage audits beside the seed's
FLAG_KEY = {"pk": "tenant-1", "sk": "flag#dark-mode"}
FLAG_KEY_TEXT = key_text({name: {"S": value} for name, value in FLAG_KEY.items()})  # {"pk":"tenant-1","sk":...}


def wait_for(what: str, condition: Callable[[], bool], timeout: float = TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def scenario(stack: LocalStack) -> list[tuple[str, Callable[[], Any], int]]:
    """(what happens, the write, entries expected after it): SPEC.md's seed, then its life."""
    table = stack.configuration
    key = {"key": "CACHE_TTL_SEC"}

    def create() -> Any:
        return table.put_item(Item={**key, "value": Decimal(3600)})

    def change() -> Any:
        return table.update_item(
            Key=key,
            UpdateExpression="SET #v = :v",
            ExpressionAttributeNames={"#v": "value"},
            ExpressionAttributeValues={":v": Decimal(1800)},
        )

    def describe() -> Any:
        return table.update_item(
            Key=key,
            UpdateExpression="SET description = :d",
            ExpressionAttributeValues={":d": "seconds a cached entry lives"},
        )

    def secret() -> Any:
        return table.update_item(
            Key=key,
            UpdateExpression="SET cachePassword = :p",
            ExpressionAttributeValues={":p": "hunter2"},
        )

    def delete() -> Any:
        return table.delete_item(Key=key)

    return [
        ("create CACHE_TTL_SEC = 3600", create, 1),
        ("change it to 1800", change, 2),
        ("add a description", describe, 3),
        ("add cachePassword = hunter2 (the local stage redacts *password*: only its digest is kept)", secret, 4),
        ("delete it", delete, 5),
    ]


def flag_scenario(stack: LocalStack) -> list[tuple[str, Callable[[], Any], int]]:
    """(what happens, the write, entries expected after it): a feature flag created, then turned on."""
    table = stack.table(FLAGS)

    def create() -> Any:
        return table.put_item(Item={**FLAG_KEY, "enabled": False, "rollout": Decimal(10)})

    def turn_on() -> Any:
        return table.update_item(
            Key=FLAG_KEY, UpdateExpression="SET enabled = :on", ExpressionAttributeValues={":on": True}
        )

    return [
        (f"create flag {FLAG_KEY_TEXT} in {FLAGS} (hash key pk, range key sk): enabled = false", create, 1),
        ("turn it on", turn_on, 2),
    ]


def _has_entries(stack: LocalStack, count: int, source: str | None = None, logged: int = -1) -> bool:
    """``count`` entries in the trail, and (``logged``: the poller's entry count before the write)
    the poller's line of the write's batch out: entries show before their batch ends (its digest,
    then its line), and the next print must not land in the middle of that line."""
    done = stack.poller is not None and stack.poller.stats.entries > logged
    return done and len(stack.audit_entries(source)) >= count


def _logged(stack: LocalStack) -> int:
    """The entries the poller has logged so far: a write's batch is out once this grows."""
    return stack.poller.stats.entries if stack.poller is not None else 0


def _not_the_functions(record: logging.LogRecord) -> bool:
    """False for the function's own log records: its JSON handler has printed them already."""
    return record.name != SERVICE and not record.name.startswith(SERVICE + ".")


def quiet_logs() -> None:
    """The poller's progress lines; the function's own JSON logs only from WARNING up, no EMF.

    The function's logger passes its records on to the root's handler too (Powertools leaves
    propagation on): printed there again, each poison record would be logged twice.
    """
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    progress = logging.StreamHandler(sys.stdout)
    progress.setFormatter(logging.Formatter("  %(name)s: %(message)s"))
    progress.addFilter(_not_the_functions)
    logging.basicConfig(level=logging.INFO, handlers=[progress])
    for noisy in ("werkzeug", "botocore", "boto3", "urllib3", SERVICE):  # SERVICE: the function's logger
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main() -> int:
    quiet_logs()
    started = time.monotonic()
    key = "CACHE_TTL_SEC"
    with LocalStack(LOCAL_STAGE) as stack:
        tables = ", ".join(table.source for table in stack.audited)
        print(f"moto server on {stack.endpoint}; tables {tables}, their trails and streams created; poller started")
        stack.start_poller(batching_window=0.0)
        stack.play_cloudtrail(stack.configuration.meta.client)  # CloudTrail's part: who called each write
        for what, write, expected in scenario(stack):
            print(f"- {what}")
            logged = _logged(stack)
            write()
            wait_for(f"{expected} audit entries", functools.partial(_has_entries, stack, expected, None, logged))
        trail = Trail(stack.variables, stack.session())
        print()
        print(render_trail(trail, key))
        # roll back to just after the description was added: the item comes back, as a change of its own
        moment = sorted(entry["modificationTime"] for entry in stack.audit_entries())[2]
        print(f"\n- config-audit rollback {key} --to {moment}")
        stack.play_cloudtrail(trail.dynamodb)  # the operator's write is attributed like any other
        plan = plan_rollback(trail, key, moment)
        print("\n".join("  " + line for line in differences(plan.before, plan.after)))
        logged = _logged(stack)
        print("  " + write_back(trail, key, plan.current, plan.target, operator=None))
        wait_for("the rollback's entry", functools.partial(_has_entries, stack, 6, None, logged))
        print()
        print(render_trail(trail, key))
        print(f"\n{FLAGS}, its own trail beside the seed's:")
        for what, write, expected in flag_scenario(stack):
            print(f"- {what}")
            logged = _logged(stack)
            write()
            wait_for(f"{expected} {FLAGS} entries", functools.partial(_has_entries, stack, expected, FLAGS, logged))
        print()
        print(render_trail(trail, FLAG_KEY_TEXT, stack.audited_table(FLAGS)))
        # the incident question: every change of every audited table just now, newest first, with who
        print("\n- config-audit changes --since 5m\n")
        print(config_audit(stack, "changes", "--since", "5m"))
        print(f"\n- config-audit verify\n  {verified(stack, trail)}")
    print(f"\ndone in {time.monotonic() - started:.1f} s; everything started has been stopped")
    return 0


def verified(stack: LocalStack, trail: Trail) -> str:
    """`config-audit verify` of every audited table's whole trail against the digests in moto's S3."""
    answer = verify(trail.settings, trail.dynamodb, stack.client("s3"), stack.audited, Window())
    return answer if isinstance(answer, str) else answer.text.replace("\n", "\n  ")


def config_audit(stack: LocalStack, *argv: str) -> str:
    """What `config-audit --local ARGV` answers, run as the CLI runs it (the stack's stage, its endpoint)."""
    answer = cli.run(cli.parser().parse_args(["--endpoint", stack.endpoint, "--stage", stack.stage, *argv]))
    return answer.text if isinstance(answer, Answer) else answer


def render_trail(trail: Trail, key: str, table: AuditedTable | None = None) -> str:
    """The key's history as `config-audit history` prints it: oldest first, with who made each change.

    ``table`` names another audited table than the stage's first.
    """
    repository = trail.audit if table is None else DynamoDBAuditRepository(trail.dynamodb, table.trail)
    entries = with_actors(whole_history(repository, key), trail.actors, trail.table if table is None else table.source)
    return render_table([deserialize_image(entry) for entry in reversed(entries)])


if __name__ == "__main__":
    raise SystemExit(main())
