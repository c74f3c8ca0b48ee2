"""`make bench`: figures measured side by side in one run, written to bench/results.json and docs/figures.md.

python -m bench.run            # the full run (a few minutes on 2 cores)
python -m bench.run --smoke    # tiny sizes, one run each: proves the benchmark still works
python -m bench.run --render   # the figures table and the plot again from bench/results.json, no measuring
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import io
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from bench.bare import bare_entries
from bench.naive import naive_handler
from bench.time_index import time_index_cost
from bench.workload import event as workload_event
from chalicelib.audit.plan import plan_batch
from chalicelib.audit.repository import BATCH_WRITE_LIMIT, stored
from config_audit.stage import stage_environment
from infra.redaction_key import ensure_redaction_key
from infra.tables import audit_table, create_tables
from local.moto_process import moto_server

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": REGION}


def interpreter_speed(runs: int = 5) -> float:
    """Seconds for an empty Python loop of 10 million turns: how fast this core runs Python."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(10_000_000):
            pass
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "runs": len(samples),
    }


def paired_ratio(ours: list[float], other: list[float]) -> float:
    """Median of the per-run ratios of two contenders timed in the same runs."""
    return statistics.median(mine / theirs for mine, theirs in zip(ours, other, strict=True))


# -- build throughput -------------------------------------------------------------------------


def build_throughput(sizes: list[int], runs: int) -> list[dict[str, Any]]:
    """Records per second of the pure step (records -> entries), one core, no I/O.

    Each run plans a freshly parsed copy of the event, untimed parse first, as a warm Lambda
    does. The bare step (bench/bare.py: the same entries, no checks) runs on the same records in
    the same runs, alternating which goes first, so a busy moment of the machine hits both
    alike; ``ours/bare`` is the median of the per-run ratios.
    """
    steps: dict[str, Callable[[Any], Any]] = {"ours": plan_batch, "bare": bare_entries}
    rows = []
    for shape, wide in (("seed-shaped", False), ("wide", True)):
        for size in sizes:
            payload = json.dumps(workload_event(size, wide=wide))
            event = json.loads(payload)
            if bare_entries(event) != plan_batch(event).entries:  # also warms caches once
                raise SystemExit(f"bench/bare.py and plan_batch disagree on {shape} x {size}; fix the bare step")
            samples: dict[str, list[float]] = {"ours": [], "bare": []}
            for run in range(runs):
                for name in ("ours", "bare") if run % 2 == 0 else ("bare", "ours"):
                    gc.collect()
                    # each invocation gets its own event, parsed from JSON just before the
                    # handler runs, as Lambda's runtime does: no two records share an object
                    event = json.loads(payload)
                    gc.disable()  # plan_batch pauses the collector itself (audit/plan.py); the bare step gets the same
                    start = time.perf_counter()
                    steps[name](event)
                    samples[name].append(size / (time.perf_counter() - start))
                    gc.enable()
            ratio = paired_ratio(samples["ours"], samples["bare"])
            rows.append(
                {
                    "shape": shape,
                    "batch": size,
                    **summary(samples["ours"]),
                    "bare": summary(samples["bare"]),
                    "ours/bare": ratio,
                }
            )
    return rows


def client(endpoint: str, service: str = "dynamodb") -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, config=Config(retries={"mode": "standard"}))


# -- end to end --------------------------------------------------------------------------------


class Contenders:
    """Ours (the Chalice handler), the naive baseline and the floor, on the same records."""

    def __init__(self, endpoint: str) -> None:
        os.environ.update(CREDENTIALS, AWS_ENDPOINT_URL=endpoint)
        from chalice.test import Client

        from app import app
        from chalicelib import wiring

        wiring.clear()
        self.dynamodb = client(endpoint)
        create_tables(self.dynamodb, "Configuration", "Audit")
        # the dev stage redacts secrets (none in this workload): its key, as provisioning makes one
        ensure_redaction_key(client(endpoint, "ssm"), stage_environment("dev", ROOT)["REDACTION_KEY_PARAMETER"])
        self.dynamodb.create_table(**audit_table("NaiveAudit"))
        self.naive_table = boto3.resource("dynamodb", endpoint_url=endpoint, region_name=REGION).Table("NaiveAudit")
        self.chalice = Client(app, stage_name="dev", project_dir=str(ROOT))
        self.write_calls: list[int] = []
        wiring.client("dynamodb").meta.events.register(
            "provide-client-params.dynamodb.BatchWriteItem", lambda **_: self.write_calls.append(1)
        )

    def ours(self, event: dict[str, Any]) -> None:
        with contextlib.redirect_stdout(io.StringIO()):  # its log line and EMF metrics, as in Lambda
            response = self.chalice.lambda_.invoke("audit_producer", event).payload
        assert response == {"batchItemFailures": []}, response

    def naive(self, event: dict[str, Any]) -> None:
        naive_handler(event, self.naive_table)

    def floor(self, entries: list[dict[str, Any]]) -> None:
        # the very items ours writes (with the time index's attributes: moto maintains the index
        # per item, so the floor must pay for it too), 25 a call, one call at a time
        items = [stored(entry) for entry in entries]
        for start in range(0, len(items), BATCH_WRITE_LIMIT):
            requests = [{"PutRequest": {"Item": e}} for e in items[start : start + BATCH_WRITE_LIMIT]]
            while requests:
                response = self.dynamodb.batch_write_item(RequestItems={"Audit": requests})
                requests = response.get("UnprocessedItems", {}).get("Audit", [])


def end_to_end(endpoint: str, sizes: list[int], naive_sizes: list[int], runs: int) -> dict[str, Any]:
    contenders = Contenders(endpoint)
    rows, calls, ratios = [], [], []
    for size in sizes:
        event = workload_event(size, wide=False, seed=size)
        entries = plan_batch(event).entries
        timers: dict[str, Callable[[], None]] = {
            "ours": functools.partial(contenders.ours, event),
            "floor": functools.partial(contenders.floor, entries),
        }
        if size in naive_sizes:
            timers["naive"] = functools.partial(contenders.naive, event)
        samples: dict[str, list[float]] = {name: [] for name in timers}
        for run in range(runs):
            order = list(timers)
            order = order[run % len(order) :] + order[: run % len(order)]  # no contender always goes first
            for name in order:
                contenders.write_calls.clear()
                start = time.perf_counter()
                timers[name]()
                samples[name].append(size / (time.perf_counter() - start))
                if name == "ours":
                    calls.append({"batch": size, "entries": len(entries), "calls": len(contenders.write_calls),
                                  "ceil": math.ceil(len(entries) / BATCH_WRITE_LIMIT)})  # fmt: skip
        for name, values in samples.items():
            rows.append({"contender": name, "batch": size, **summary(values)})
        # each run times every contender once, back to back: the median of the per-run ratios is
        # what a slow moment of the moto server or of this VM (hitting one run) cannot move
        ratios.append({
            "batch": size,
            "ours/naive": paired_ratio(samples["ours"], samples["naive"]) if "naive" in samples else None,
            "ours/floor": paired_ratio(samples["ours"], samples["floor"]),
        })  # fmt: skip
    unique_calls = {(c["batch"], c["entries"], c["calls"], c["ceil"]) for c in calls}
    return {
        "throughput": rows,
        "ratios": ratios,
        "write_calls": [dict(zip(("batch", "entries", "calls", "ceil"), c, strict=True)) for c in sorted(unique_calls)],
    }


# -- the digest's cost -------------------------------------------------------------------------

DIGEST_BUCKET = "config-audit-bench-digests"


def digest_cost(endpoint: str, size: int, runs: int) -> dict[str, Any]:
    """ms per batch of the handler with DIGEST_BUCKET set and unset, on the same records in the same
    runs (alternating which goes first), and the PutObject calls each batch with digests made."""
    os.environ.update(CREDENTIALS, AWS_ENDPOINT_URL=endpoint)
    from chalice.test import Client

    from app import app
    from chalicelib import wiring
    from infra.digest_bucket import ensure_digest_bucket

    wiring.clear()
    dynamodb = client(endpoint)
    if "Audit" not in dynamodb.list_tables()["TableNames"]:
        create_tables(dynamodb, "Configuration", "Audit")
    ensure_redaction_key(client(endpoint, "ssm"), stage_environment("dev", ROOT)["REDACTION_KEY_PARAMETER"])
    ensure_digest_bucket(client(endpoint, "s3"), DIGEST_BUCKET)
    with tempfile.TemporaryDirectory() as project:  # the dev stage, and the same with DIGEST_BUCKET set
        shutil.copytree(ROOT / ".chalice", Path(project) / ".chalice")
        config_path = Path(project) / ".chalice" / "config.json"
        config = json.loads(config_path.read_text())
        config["stages"]["dev"]["environment_variables"]["DIGEST_BUCKET"] = DIGEST_BUCKET
        config_path.write_text(json.dumps(config))
        clients = {"with": Client(app, stage_name="dev", project_dir=project),
                   "without": Client(app, stage_name="dev", project_dir=str(ROOT))}  # fmt: skip

        def invoke(name: str, event: dict[str, Any]) -> float:
            """One batch through the handler; its wall time in ms."""
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):  # its log line and EMF metrics, as in Lambda
                response = clients[name].lambda_.invoke("audit_producer", event).payload
            elapsed = (time.perf_counter() - start) * 1000
            assert response == {"batchItemFailures": []}, response
            return elapsed

        for name in clients:  # warm both (clients, connections, the S3 client made on the first digest)
            invoke(name, workload_event(size, wide=False, seed=-1))
        puts: list[int] = []
        wiring.client("s3").meta.events.register("provide-client-params.s3.PutObject", lambda **_: puts.append(1))
        samples: dict[str, list[float]] = {"with": [], "without": []}
        per_batch: list[int] = []
        for run in range(runs):
            payload = json.dumps(workload_event(size, wide=False, seed=run))
            for name in ("with", "without") if run % 2 == 0 else ("without", "with"):
                before = len(puts)
                samples[name].append(invoke(name, json.loads(payload)))
                if name == "with":
                    per_batch.append(len(puts) - before)
    return {
        "batch": size,
        "with_ms": summary(samples["with"]),
        "without_ms": summary(samples["without"]),
        "ratio": paired_ratio(samples["with"], samples["without"]),
        "added_ms": statistics.median(w - wo for w, wo in zip(samples["with"], samples["without"], strict=True)),
        "put_object_calls": sorted(set(per_batch)),
    }


# -- cold start, memory, latency ---------------------------------------------------------------


def cold_start(runs: int) -> dict[str, Any]:
    """Wall time of a fresh interpreter importing app.py, against one importing boto3 alone."""
    env = {"PATH": os.environ.get("PATH", ""), **CREDENTIALS}
    guard = (
        "import socket\ndef no(*a, **k): raise SystemExit('network call during import')\nsocket.socket.connect = no\n"
    )

    def timed(statement: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", guard + statement], cwd=ROOT, env=env, check=True, timeout=60)
        return time.perf_counter() - start

    base, ours, python = [], [], []
    for _ in range(runs):
        python.append(timed("pass"))
        base.append(timed("import boto3"))
        ours.append(timed("import app"))
    interpreter = statistics.median(python)
    return {
        "interpreter_s": summary(python),
        "boto3_s": summary(base),
        "app_s": summary(ours),
        "ratio": statistics.median(ours) / statistics.median(base),
        "ratio_above_interpreter": (statistics.median(ours) - interpreter) / (statistics.median(base) - interpreter),
        "network_calls_during_import": 0,  # the guard above exits non-zero on any connect
    }


def memory(endpoint: str, size: int, secrets: bool = False) -> dict[str, Any]:
    """Peak memory of handling one batch of ``size`` records, in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.memory", endpoint, str(size), *(["secrets"] if secrets else [])],
        cwd=ROOT,
        env={**os.environ, **CREDENTIALS, "AWS_ENDPOINT_URL": endpoint},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def local_latency(changes: int) -> dict[str, Any]:
    """put_item to entry visible in the Audit table, through the local stack's poller."""
    from local.stack import LocalStack

    samples = []
    with LocalStack() as stack:
        stack.start_poller()
        audit = stack.variables["AUDIT_TABLE_NAME"]
        for number in range(changes):
            key = f"LATENCY_{number}"
            start = time.perf_counter()
            stack.configuration.put_item(Item={"key": key, "value": number})
            deadline = start + 30
            while not stack.dynamodb.query(
                TableName=audit,
                IndexName="itemKey-modificationTime-index",
                KeyConditionExpression="itemKey = :k",
                ExpressionAttributeValues={":k": {"S": key}},
            )["Items"]:
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"{key} never audited")
                time.sleep(0.005)
            samples.append((time.perf_counter() - start) * 1000)
    ordered = sorted(samples)
    return {
        "changes": changes,
        "median_ms": statistics.median(ordered),
        "p95_ms": ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)],
        "min_ms": ordered[0],
        "max_ms": ordered[-1],
        "poll_interval_ms": 100,
    }


# -- guards ------------------------------------------------------------------------------------

DIGEST_BATCH = 100  # Lambda's default batch, as app.py subscribes
BUILD_FLOOR = 25_000  # records/s, seed-shaped, one core: a 10,000-record batch in under 0.4 s
BUILD_FLOOR_BATCH = 10_000
ALLOCATION_GUARD_MB = 24  # what handling a batch may allocate beyond the event Lambda hands over


def guards(results: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(what is guarded, what this run measured, met) for each figure docs/figures.md promises."""
    e2e = results["end_to_end"]
    seed = [r for r in results["build"] if r["shape"] == "seed-shaped"]
    floor_row = next((r for r in seed if r["batch"] == BUILD_FLOOR_BATCH), max(seed, key=lambda r: r["batch"]))
    naive = [r for r in e2e["ratios"] if r["ours/naive"] is not None]
    cold, mem, index = results["cold_start"], results["memory"], results["time_index"]
    return [
        (
            f"build step, seed-shaped, {BUILD_FLOOR_BATCH:,}-record batch: >= {BUILD_FLOOR:,} records/s",
            f"{floor_row['median']:,.0f} at {floor_row['batch']:,} ({floor_row['batch'] / floor_row['median']:.2f} s)",
            floor_row["median"] >= BUILD_FLOOR,
        ),
        (
            "end to end: ours / naive >= 8x",
            ", ".join(f"{r['ours/naive']:.1f}x at {r['batch']:,}" for r in naive),
            all(r["ours/naive"] >= 8 for r in naive),
        ),
        (
            "end to end: ours / floor >= 0.9",
            ", ".join(f"{r['ours/floor']:.2f} at {r['batch']:,}" for r in e2e["ratios"]),
            all(r["ours/floor"] >= 0.9 for r in e2e["ratios"]),
        ),
        (
            "write calls = ceil(entries / 25)",
            ", ".join(f"{c['calls']} at {c['batch']:,}" for c in e2e["write_calls"]),
            all(c["calls"] == c["ceil"] for c in e2e["write_calls"]),
        ),
        (
            f"time index: a burst of {index['burst']['entries']:,} entries in one second puts < 1,000 on any "
            "index partition, and adds 1 write unit per entry",
            f"busiest partition {index['burst']['busiest_shard_entries']:,}; "
            f"{index['write_units']['time_index']:.2f} write units per entry",
            index["burst"]["busiest_shard_entries"] < 1000 and index["write_units"]["time_index"] == 1,
        ),
        ("cold start <= 1.4x `import boto3`", f"{cold['ratio']:.2f}x", cold["ratio"] <= 1.4),
        (
            "no network call on import",
            str(cold["network_calls_during_import"]),
            cold["network_calls_during_import"] == 0,
        ),
        (
            f"peak memory, {mem['plain']['records']:,}-record batch < 64 MB above baseline",
            f"{mem['plain']['rss_delta_mb']:.1f} MB",
            mem["plain"]["rss_delta_mb"] < 64,
        ),
        (
            f"Python allocations, {mem['plain']['records']:,}-record batch, plain and with secrets: "
            f"<= {ALLOCATION_GUARD_MB} MB above the event",
            f"{mem['plain']['tracemalloc_peak_mb']:.1f} MB, {mem['secrets']['tracemalloc_peak_mb']:.1f} MB",
            max(mem["plain"]["tracemalloc_peak_mb"], mem["secrets"]["tracemalloc_peak_mb"]) <= ALLOCATION_GUARD_MB,
        ),
        *_digest_guard(results.get("digests")),
    ]


def _digest_guard(digests: dict[str, Any] | None) -> list[tuple[str, str, bool]]:
    """One PutObject a batch with DIGEST_BUCKET set (none where results.json predates the digests)."""
    if digests is None:
        return []
    calls = digests["put_object_calls"]
    what = f"digests (DIGEST_BUCKET): one PutObject a {digests['batch']:,}-record batch"
    return [(what, ", ".join(map(str, calls)), calls == [1])]


# -- output ------------------------------------------------------------------------------------


def markdown(results: dict[str, Any]) -> str:
    e2e = results["end_to_end"]
    lines = [
        f"Measured {results['measured']} on {results['machine']['cores']} cores, Python {results['machine']['python']}; "
        "median of the runs, [min, max] in brackets. For scale: an empty Python loop of 10 million turns "
        f"takes {results['machine']['empty_loop_10M_s']:.2f} s on this core.",
        "",
        "| guard | this run | met |",
        "| --- | --- | --- |",
        *(f"| {what} | {figure} | {'yes' if met else '**no**'} |" for what, figure, met in guards(results)),
        "",
        "| build (pure step, one core) | batch | records/s | bare step, same runs | ours / bare |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for row in results["build"]:
        bare = row["bare"]
        lines.append(
            f"| {row['shape']} | {row['batch']:,} | {row['median']:,.0f} [{row['min']:,.0f}, {row['max']:,.0f}] "
            f"| {bare['median']:,.0f} [{bare['min']:,.0f}, {bare['max']:,.0f}] | {row['ours/bare']:.2f} |"
        )
    lines += ["", "| end to end, moto server on 127.0.0.1 | batch | records/s |", "| --- | ---: | ---: |"]
    for row in e2e["throughput"]:
        lines.append(
            f"| {row['contender']} | {row['batch']:,} | {row['median']:,.0f} [{row['min']:,.0f}, {row['max']:,.0f}] |"
        )
    lines += [
        "",
        "| batch | ours / naive | ours / floor | write calls | ceil(entries / 25) |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    calls = {c["batch"]: c for c in e2e["write_calls"]}
    for ratio in e2e["ratios"]:
        naive = "-" if ratio["ours/naive"] is None else f"{ratio['ours/naive']:.1f}x"
        c = calls.get(ratio["batch"], {})
        lines.append(
            f"| {ratio['batch']:,} | {naive} | {ratio['ours/floor']:.2f} | {c.get('calls')} | {c.get('ceil')} |"
        )
    cold, mem, lat = results["cold_start"], results["memory"], results["latency"]
    lines += [
        "",
        "| other | figure |",
        "| --- | --- |",
        f"| cold start: `import app` / `import boto3` (fresh interpreter, wall) | {cold['ratio']:.2f}x "
        f"({cold['app_s']['median'] * 1000:.0f} ms / {cold['boto3_s']['median'] * 1000:.0f} ms; "
        f"{cold['ratio_above_interpreter']:.2f}x above the bare interpreter's {cold['interpreter_s']['median'] * 1000:.0f} ms) |",
        "| network calls during import | 0 |",
        *(
            f"| memory, {m['records']:,}-record batch{' with secrets' if m['secrets'] else ''}: "
            f"peak RSS above baseline | {m['rss_delta_mb']:.1f} MB "
            f"(Python allocations peak {m['tracemalloc_peak_mb']:.1f} MB; the event itself {m['event_mb']:.1f} MB) |"
            for m in (mem["plain"], mem["secrets"])
        ),
        *time_index_rows(results["time_index"]),
        f"| local latency, put_item to entry visible ({lat['changes']} changes, poller polls every {lat['poll_interval_ms']} ms) | "
        f"median {lat['median_ms']:.0f} ms, p95 {lat['p95_ms']:.0f} ms |",
    ]
    digests = results.get("digests")
    if digests:
        with_ms, without_ms = digests["with_ms"], digests["without_ms"]
        lines.append(
            f"| digest cost, {digests['batch']:,}-record batch, DIGEST_BUCKET set / unset (same runs, "
            f"{with_ms['runs']} each) | {with_ms['median']:.1f} ms / {without_ms['median']:.1f} ms a batch "
            f"[{with_ms['min']:.1f}, {with_ms['max']:.1f}] / [{without_ms['min']:.1f}, {without_ms['max']:.1f}]; "
            f"{digests['ratio']:.2f}x, +{digests['added_ms']:.1f} ms a batch; "
            f"PutObject calls a batch: {', '.join(map(str, digests['put_object_calls']))} |"
        )
    return "\n".join(lines)


def time_index_rows(index: dict[str, Any]) -> list[str]:
    """The time index's cost: write units and dollars per million changes, a burst's write time with
    and without it, and the reads of its hour."""
    burst, hour, page = index["burst"], index["reads"]["hour"], index["reads"]["page"]
    price = index["usd_per_million_read_units"]

    def reads(what: dict[str, Any]) -> str:
        units = sum(what["read_units"].values())
        parts = ", ".join(f"{name} {what['calls'].get(name, 0)} calls / {what['read_units'].get(name, 0):g} units"
                          for name in ("time index", "entries", "actors"))  # fmt: skip
        return f"{units:,.1f} read units (${units * price / 1_000_000:.6f}): {parts}"

    return [
        f"| time index: write units per entry (trail, history index, time index) | "
        f"{index['write_units']['table']:.2f}, {index['write_units']['history_index']:.2f}, "
        f"{index['write_units']['time_index']:.2f} (time index item {index['write_units']['time_index_item_bytes']:.0f} bytes) |",
        f"| time index: on-demand cost per million changes | +${index['time_index_usd_per_million_changes']:.3f} "
        f"(${index['without_time_index_usd_per_million_changes']:.3f} without it) |",
        f"| time index: burst of {burst['entries']:,} entries in one second, write time with / without the index | "
        f"{burst['with/without']:.2f} ({burst['seconds_with']:.2f} s / {burst['seconds_without']:.2f} s); "
        f"busiest of {burst['shards']} partitions {burst['busiest_shard_entries']:,} entries |",
        f"| one-hour window holding the burst, read whole ({hour['entries']:,} entries) | {reads(hour)} |",
        f"| the same window, first page of {page['limit']} | {reads(page)} |",
    ]


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    def medians(axis: Any, batches: list[int], points: list[dict[str, float]], **style: Any) -> None:
        """One line of medians with min-max bars."""
        axis.errorbar(
            batches,
            [p["median"] for p in points],
            yerr=[[p["median"] - p["min"] for p in points], [p["max"] - p["median"] for p in points]],
            marker="o",
            capsize=3,
            **style,
        )

    def frame(axis: Any, title: str) -> None:
        axis.set_xscale("log")
        axis.set_xlabel("records per batch")
        axis.set_ylabel("records per second (median, min-max)")
        axis.set_title(title)
        axis.yaxis.set_major_formatter(matplotlib.ticker.StrMethodFormatter("{x:,.0f}"))
        axis.grid(True, alpha=0.3)

    figure, (end_to_end, build) = plt.subplots(1, 2, figsize=(12, 4.4))
    for contender in ("ours", "floor", "naive"):
        rows = [r for r in results["end_to_end"]["throughput"] if r["contender"] == contender]
        if rows:
            medians(end_to_end, [r["batch"] for r in rows], rows, label=contender)
    frame(end_to_end, "audit_producer against a moto server on 127.0.0.1")
    end_to_end.legend()
    for shape, style in (("seed-shaped", "-"), ("wide", "--")):
        rows = [r for r in results["build"] if r["shape"] == shape]
        batches = [r["batch"] for r in rows]
        medians(build, batches, rows, linestyle=style, color="C0", label=f"ours, {shape}")
        medians(build, batches, [r["bare"] for r in rows], linestyle=style, color="C7", label=f"bare, {shape}")
    build.axhline(BUILD_FLOOR, color="C3", linewidth=1, linestyle=":", label=f"floor: {BUILD_FLOOR:,}/s")
    frame(build, "pure build step, one core")
    build.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def update_readme(readme: Path, table: str) -> None:
    text = readme.read_text()
    block = f"<!-- bench:start -->\n{table}\n<!-- bench:end -->"
    pattern = re.compile(r"<!-- bench:start -->.*?<!-- bench:end -->", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{readme} has no <!-- bench:start --> ... <!-- bench:end --> block")
    readme.write_text(pattern.sub(lambda _m: block, text))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run: checks the benchmark works")
    parser.add_argument("--out", type=Path, default=ROOT / "bench", help="where results.json and the plot go")
    parser.add_argument(
        "--readme", type=Path, default=ROOT / "docs" / "figures.md", help="the page whose table is updated"
    )
    parser.add_argument("--render", action="store_true", help="redraw table and plot from results.json only")
    args = parser.parse_args(argv)
    if args.render:
        measured = json.loads((args.out / "results.json").read_text())
        plot(measured, args.out / "throughput.png")
        update_readme(args.readme, markdown(measured))
        print(markdown(measured))
        return 0
    if args.smoke:
        build_sizes, e2e_sizes, naive_sizes, runs, cold_runs, memory_size, changes, burst_size = (
            [10, 50], [10, 30], [10, 30], 1, 1, 200, 3, 200
        )  # fmt: skip
    else:
        build_sizes, e2e_sizes, naive_sizes, runs, cold_runs, memory_size, changes, burst_size = (
            [100, 1000, 10_000], [100, 1000, 10_000], [100, 1000], 5, 7, 10_000, 40, 10_000
        )  # fmt: skip
    started = time.perf_counter()
    results: dict[str, Any] = {
        "measured": time.strftime("%Y-%m-%d"),
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "system": platform.platform(),
            "empty_loop_10M_s": interpreter_speed(1 if args.smoke else 5),
        },
        "smoke": args.smoke,
    }
    print("build throughput ...", flush=True)
    results["build"] = build_throughput(build_sizes, runs * 2 + 1)
    with moto_server() as endpoint:
        print("end to end against moto_server ...", flush=True)
        results["end_to_end"] = end_to_end(endpoint, e2e_sizes, naive_sizes, runs)
        print("time index ...", flush=True)
        results["time_index"] = time_index_cost(client(endpoint), burst_size, runs)
        print("digest cost ...", flush=True)
        results["digests"] = digest_cost(endpoint, DIGEST_BATCH, runs * 4)
        print("memory ...", flush=True)
        results["memory"] = {
            "plain": memory(endpoint, memory_size),
            "secrets": memory(endpoint, memory_size, secrets=True),
        }
    print("cold start ...", flush=True)
    results["cold_start"] = cold_start(cold_runs)
    print("local latency ...", flush=True)
    results["latency"] = local_latency(changes)
    results["seconds"] = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, args.out / "throughput.png")
    table = markdown(results)
    if args.readme.exists():
        update_readme(args.readme, table)
    print(table)
    unmet = [what for what, _, met in guards(results) if not met]
    print(f"\n{results['seconds']:.0f} s; wrote {args.out / 'results.json'} and {args.out / 'throughput.png'}")
    if unmet and not args.smoke:
        print("guards NOT met: " + "; ".join(unmet))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
