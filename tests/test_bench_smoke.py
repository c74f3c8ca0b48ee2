"""The benchmark runs end to end on tiny sizes, so that `make bench` cannot rot. No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_bench_smoke_writes_results_plot_and_readme_table(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("before\n<!-- bench:start -->\nold\n<!-- bench:end -->\nafter\n")
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--out", str(tmp_path), "--readme", str(readme)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert {r["contender"] for r in results["end_to_end"]["throughput"]} == {"ours", "naive", "floor"}
    assert all(c["calls"] == c["ceil"] for c in results["end_to_end"]["write_calls"])
    assert results["cold_start"]["network_calls_during_import"] == 0
    assert {m["secrets"] for m in results["memory"].values()} == {False, True}
    # the digest's cost: the same batches with DIGEST_BUCKET set and unset, one PutObject each
    assert results["digests"]["put_object_calls"] == [1]
    assert results["digests"]["with_ms"]["runs"] == results["digests"]["without_ms"]["runs"] > 0
    # the build rows carry the bare reference measured in the same runs (it made the same entries)
    assert {(r["shape"], r["batch"]) for r in results["build"]} == {
        (s, n) for s in ("seed-shaped", "wide") for n in (10, 50)
    }
    assert all(r["bare"]["runs"] == r["runs"] and r["ours/bare"] > 0 for r in results["build"])
    assert (tmp_path / "throughput.png").read_bytes()[:4] == b"\x89PNG"
    text = readme.read_text()
    assert "\nold\n" not in text and "| batch | ours / naive | ours / floor |" in text
    assert "| guard | this run | met |" in text and "| no network call on import | 0 | yes |" in text
    assert "| digests (DIGEST_BUCKET): one PutObject a 100-record batch | 1 | yes |" in text
    assert "| digest cost, 100-record batch, DIGEST_BUCKET set / unset" in text
    assert text.startswith("before\n<!-- bench:start -->\nMeasured ") and text.endswith("<!-- bench:end -->\nafter\n")
