"""What the time index costs: a write burst through it against the same writes with no time index,
and the reads of a one-hour window, measured against a moto server.

moto does not meter capacity, so the units are counted from what was measured: the size of every
item written (the trail item, its history index copy, its time index copy) and of every item a
window's calls read back, by DynamoDB's size rules (``item_size``, the producer's own count
towards the 400 KB limit), rounded per item (writes: 1 KB) and per call (reads: 4 KB, eventually
consistent = half a unit), as DynamoDB rounds them.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import Counter
from typing import Any

from bench.workload import event as workload_event
from chalicelib.actors.repository import DynamoDBActorRepository
from chalicelib.attribute_values import item_size
from chalicelib.audit.changes import ChangesQuery, ChangesReader
from chalicelib.audit.plan import plan_batch
from chalicelib.audit.repository import TIME_INDEX_FIELDS, TIME_ORDER, TIME_SHARD, DynamoDBAuditRepository, stored
from chalicelib.settings import Settings
from infra.tables import actors_table, audit_table

# On-demand prices, us-east-1 (aws.amazon.com/dynamodb/pricing/on-demand, November 2024 on)
PRICE_PER_MILLION_WRITE_UNITS = 0.625
PRICE_PER_MILLION_READ_UNITS = 0.125


def _time_index_copy(item: dict[str, Any]) -> dict[str, Any]:
    kept = ("id", TIME_SHARD, TIME_ORDER, *TIME_INDEX_FIELDS)
    return {name: value for name, value in item.items() if name in kept}


def write_units(entries: list[dict[str, Any]]) -> dict[str, float]:
    """Write units per entry: the trail item, its history index copy (all attributes), its time index copy."""
    items = [stored(entry) for entry in entries]
    per_kb = [math.ceil(item_size(item) / 1024) for item in items]
    time_copy = [math.ceil(item_size(_time_index_copy(item)) / 1024) for item in items]
    return {
        "table": statistics.mean(per_kb),
        "history_index": statistics.mean(per_kb),  # projection ALL: the whole item again
        "time_index": statistics.mean(time_copy),
        "time_index_item_bytes": statistics.mean(item_size(_time_index_copy(item)) for item in items),
    }


def burst(dynamodb: Any, entries: list[dict[str, Any]], runs: int) -> dict[str, Any]:
    """Seconds to write the burst into a trail with the time index, and into one without, in the same runs."""
    without = audit_table("BurstNoTimeIndex")
    without["GlobalSecondaryIndexes"] = without["GlobalSecondaryIndexes"][:1]
    without["AttributeDefinitions"] = [
        a for a in without["AttributeDefinitions"] if a["AttributeName"] not in (TIME_SHARD, TIME_ORDER)
    ]
    dynamodb.create_table(**without)
    dynamodb.create_table(**audit_table("BurstTimeIndex"))
    trails = {"with": "BurstTimeIndex", "without": "BurstNoTimeIndex"}
    samples: dict[str, list[float]] = {name: [] for name in trails}
    for run in range(runs):
        for name in ("with", "without") if run % 2 == 0 else ("without", "with"):
            repository = DynamoDBAuditRepository(dynamodb, trails[name])
            start = time.perf_counter()
            result = repository.save(entries)  # the same ids each run: overwritten, as a redelivery would be
            samples[name].append(time.perf_counter() - start)
            assert not result.unwritten and not result.refused
    ratios = [w / wo for w, wo in zip(samples["with"], samples["without"], strict=True)]
    per_shard = Counter(stored(entry)[TIME_SHARD]["S"] for entry in entries)
    return {
        "entries": len(entries),
        "seconds_with": statistics.median(samples["with"]),
        "seconds_without": statistics.median(samples["without"]),
        "with/without": statistics.median(ratios),
        "busiest_shard_entries": max(per_shard.values()),
        "shards": len(per_shard),
    }


def window_reads(dynamodb: Any, entries: list[dict[str, Any]], page: int) -> dict[str, Any]:
    """The calls and read units of reading one hour holding these entries: whole, and a page of ``page``."""
    dynamodb.create_table(**actors_table("BurstActors"))
    settings = Settings.from_environ(
        {"CONFIGURATION_TABLE_NAME": "Configuration", "AUDIT_TABLE_NAME": "BurstTimeIndex",
         "CONFIGURATION_STREAM_ARN": "arn:aws:dynamodb:us-east-1:123456789012:table/Configuration/stream/1"}
    )  # fmt: skip
    reader = ChangesReader(dynamodb, settings, DynamoDBActorRepository(dynamodb, "BurstActors"))
    times = sorted(entry["modificationTime"]["S"] for entry in entries)
    hour = ChangesQuery(times[0][:13] + ":00:00.000Z", times[0][:13] + ":59:59.999Z")
    units: dict[str, float] = {}
    calls: Counter[str] = Counter()

    def metered(params: dict[str, Any], model: Any, parsed: Any, **_: Any) -> None:
        table = params.get("TableName") or next(iter(params.get("RequestItems", {})), "")
        what = {"BatchGetItem": "entries", "Query": "actors" if table == "BurstActors" else "time index"}[model.name]
        calls[what] += 1
        items = parsed.get("Items") or [i for found in parsed.get("Responses", {}).values() for i in found]
        if model.name == "BatchGetItem":  # each item rounded up to 4 KB
            units[what] = units.get(what, 0) + sum(0.5 * math.ceil(max(item_size(i), 1) / 4096) for i in items)
        else:  # the call's items together, rounded up to 4 KB (an empty result still costs one)
            units[what] = units.get(what, 0) + 0.5 * max(1, math.ceil(sum(item_size(i) for i in items) / 4096))

    handler = dynamodb.meta.events
    kept: dict[str, Any] = {}
    handler.register("before-parameter-build.dynamodb.*", lambda params, **_: kept.update(params=params))
    handler.register("after-call.dynamodb.*", lambda model, parsed, **kw: metered(kept["params"], model, parsed))
    read = sum(1 for _ in reader.entries(hour))
    whole = {"entries": read, "calls": dict(calls), "read_units": dict(units)}
    calls.clear()
    units.clear()
    first = reader.page(hour, page)
    return {"hour": whole, "page": {"limit": page, "entries": len(first.entries), "calls": dict(calls),
                                    "read_units": dict(units)}}  # fmt: skip


def time_index_cost(dynamodb: Any, size: int, runs: int) -> dict[str, Any]:
    """A burst of ``size`` changes in one second: its write cost and speed, and the reads of its hour."""
    event = workload_event(size, wide=False, seed=size)
    for record in event["Records"]:  # all in one second, as a deploy script's burst would be
        record["dynamodb"]["ApproximateCreationDateTime"] = 1726045348.0
    entries = plan_batch(event).entries
    units = write_units(entries)
    entries_per_change = len(entries) / size  # a change of two attributes is two entries
    return {
        "write_units": units,
        "entries_per_change": entries_per_change,
        "time_index_usd_per_million_changes": PRICE_PER_MILLION_WRITE_UNITS * units["time_index"] * entries_per_change,
        "without_time_index_usd_per_million_changes": PRICE_PER_MILLION_WRITE_UNITS
        * (units["table"] + units["history_index"])
        * entries_per_change,
        "burst": burst(dynamodb, entries, runs),
        "reads": window_reads(dynamodb, entries, 50),
        "usd_per_million_read_units": PRICE_PER_MILLION_READ_UNITS,
    }
