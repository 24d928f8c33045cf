"""`make test`: the wall time of the whole suite, its counts and its slowest tests, with the
load average (issue 16's target: under 4 minutes on the 2-core machine, nothing dropped).

Runs `make test` as a user does (the Makefile's pytest options, xdist workers included)
with ``--durations=20`` added, and writes benchmarks/results/tests.txt and the figure of
benchmarks/results/figures.json.  Usage::

    python benchmarks/bench_tests.py
"""

from __future__ import annotations

import os
import platform
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import load, record, run

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "tests.txt"


def main() -> int:
    env = {**os.environ, "PYTEST_ADDOPTS": "--durations=20 -p no:cacheprovider"}
    header = (f"make test, {os.cpu_count()} CPUs, Python {platform.python_version()}, load "
              f"average before {load():.2f}")
    print(header, flush=True)
    measured = run(["make", "-C", str(ROOT), "test", f"PYTHON={sys.executable}"], env=env,
                   check=False)
    output = measured.stdout.splitlines()
    summary = next((line.strip("= ") for line in reversed(output)
                    if re.search(r"\d+ (passed|failed)", line)), "no pytest summary")
    start = next((i for i, line in enumerate(output) if "slowest" in line), len(output))
    slowest = [line for line in output[start:start + 21] if line.strip()]
    lines = [header,
             f"wall {measured.seconds:.0f} s ({measured.seconds / 60:.1f} min), CPU "
             f"{measured.cpu_seconds:.0f} s, {measured.memory}, {measured.load}, exit "
             f"{measured.returncode}",
             summary, *slowest, f"load average after {load():.2f}"]
    print("\n".join(lines[1:]))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    record("make test", measured, tests=summary)
    return 0 if measured.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
