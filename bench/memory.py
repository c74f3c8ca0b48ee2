"""Peak memory of one batch, measured in a fresh process: python -m bench.memory ENDPOINT RECORDS [secrets].

The baseline is the resident set once the interpreter, the app and the event are loaded (Lambda
holds the event too); the peak is Linux's high-water mark (VmHWM), reset just before the batch.
The Python allocations are traced from just after the event was built: what handling it adds.
With ``secrets`` every image holds a password the dev stage redacts.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tracemalloc
from pathlib import Path

from bench.workload import event as workload_event


def status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise KeyError(field)


def main() -> None:
    size, secrets = int(sys.argv[2]), sys.argv[3:] == ["secrets"]
    from chalice.test import Client

    from app import app
    from bench.run import ROOT

    client = Client(app, stage_name="dev", project_dir=str(ROOT))
    with contextlib.redirect_stdout(io.StringIO()):
        client.lambda_.invoke("audit_producer", workload_event(10, seed=1))  # warm: clients built, modules loaded
    before_event = status_mb("VmRSS")
    event = workload_event(size, wide=False, seed=99, secrets=secrets)
    baseline = status_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    tracemalloc.start()
    with contextlib.redirect_stdout(io.StringIO()):
        response = client.lambda_.invoke("audit_producer", event).payload
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert response == {"batchItemFailures": []}, response
    print(json.dumps({
        "records": size,
        "secrets": secrets,
        "event_mb": baseline - before_event,
        "baseline_rss_mb": baseline,
        "rss_delta_mb": status_mb("VmHWM") - baseline,
        "tracemalloc_peak_mb": peak / 2**20,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
