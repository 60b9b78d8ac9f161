"""How fast `bnity --help` starts (the CLI keeps heavy imports lazy).

    .venv/bin/python benchmarks/cli_startup.py [--runs 21]

Runs the installed `bnity --help` as a real subprocess, after one warm-up run, and prints the
median and p90 wall time next to a bare `python -c pass` for scale. Target: median < 0.3 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_S = 0.3


def timed(command: list[str], runs: int, env: dict[str, str] | None = None) -> list[float]:
    subprocess.run(command, check=True, capture_output=True, env=env)  # warm the file cache
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env)
        samples.append(time.perf_counter() - t0)
    return sorted(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    bnity = shutil.which("bnity") or str(Path(sys.executable).parent / "bnity")
    for label, command in (
        ("python -c pass", [sys.executable, "-c", "pass"]),
        ("bnity --help", [bnity, "--help"]),
    ):
        samples = timed(command, args.runs)
        median = statistics.median(samples)
        p90 = samples[int(len(samples) * 0.9) - 1]
        verdict = f"  (target < {TARGET_S} s)" if label.startswith("bnity") else ""
        print(f"{label:<16} median {median * 1000:6.0f} ms   p90 {p90 * 1000:6.0f} ms{verdict}")


if __name__ == "__main__":
    main()
