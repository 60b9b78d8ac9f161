"""The benchmark scripts still run against today's API: each at a tiny size, in a
subprocess, as a user runs it (their figures are for benchmarks/run.py, not for tests).
memory_search_bench.py once broke silently when MemoryRecall started taking ``user_id``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def test_memory_search_bench_runs_and_measures_search_and_recall(tmp_path: Path) -> None:
    out = tmp_path / "m3.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "memory_search_bench.py"),
         "--memories", "300", "--queries", "5", "--json", str(out)],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(out.read_text())
    assert results["memories"] == 300
    for part in ("hybrid", "semantic", "text", "recall"):
        assert results[part]["median_ms"] > 0, part
