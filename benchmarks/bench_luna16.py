"""Benchmark LUNA16-shaped tables (issue 11): a series UID and a centre in patient mm per
row, the study and patient from a join table, SCOORD3D in Comprehensive 3D SRs, one SR
per series.

    python benchmarks/bench_luna16.py [COPIES]

Set-up (not timed): synthetic CT headers (tests/luna16gen.py, 6 slices per series, no
pixel data) for the real table ``../shared/data/luna16/annotations.csv`` (1,117 nodules,
568 series), and for a LUNA16-shaped table ``COPIES`` (default 5) times its size: the same
nodules in new series, patients and studies, with their join table
(``luna16gen.luna16_like``).

Timed, each command in its own process (measure.py): the header index of each folder
alone (every header read and the index kept in OUTDIR/cache/, as a first run does;
imports excluded), then ``csv2sr convert --images`` end to end (process start,
imports, index, workers, files written), then the same command again into the same output
folder (the index read from OUTDIR/cache/, the unchanged SRs left as they are).  SR/s is
given end to end, without the index build (the first run's seconds less the index's), and
for the second run.  The load average is printed beside each figure (a shared machine).
Results are printed and written to ``benchmarks/results/luna16.txt``.
"""

from __future__ import annotations

import csv
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import index_seconds, load, record
from measure import run as measure

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "luna16.txt"
PROFILE = ROOT / "tests" / "data" / "luna16" / "luna16.toml"

def _write_table(rows: list[dict[str, str]], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _bench(label: str, table: Path, images: Path, join: Path | None,
           lines: list[str]) -> None:
    before = load()
    count, index = index_seconds(images)
    lines.append(f"{label}: index of {count} headers {index:.2f} s = {count / index:.0f} "
                 f"files/s  load {before:.2f}->{load():.2f}")
    print(lines[-1], flush=True)
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "csv2sr", "convert", str(table), "-p", str(PROFILE),
                   "-o", out, "--quiet", "--images", str(images)]
        if join is not None:
            command += ["--join", f"series_map={join}"]
        first = measure(command)
        if first.returncode != 0:
            sys.exit(f"convert failed: {first.stderr[-2000:]}")
        documents = sum(1 for _ in Path(out, "sr").rglob("*.dcm"))
        second = measure(command)
    rows = sum(1 for _ in table.open(encoding="utf-8")) - 1
    for name, run, seconds in (("first run, end to end", first, first.seconds),
                               ("first run without the index", first, first.seconds - index),
                               ("second run (cached index)", second, second.seconds)):
        lines.append(
            f"  {name:<30} {rows:>6} rows -> {documents} SRs  {seconds:6.2f} s  "
            f"{documents / seconds:6.0f} SR/s  {rows / seconds:6.0f} rows/s  "
            f"CPU {run.cpu_seconds:5.1f} s  tree {run.tree_peak_mib:4.0f} MiB  {run.load}")
        print(lines[-1], flush=True)
    record(f"luna16 {label}", first, rows=rows, documents=documents,
           index_seconds=round(index, 3),
           rate_without_index=round(documents / (first.seconds - index), 1),
           second_run_seconds=round(second.seconds, 3))


def main() -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from luna16gen import (  # noqa: PLC0415  (the tests' generator)
        LUNA16,
        luna16_like,
        luna16_series,
        read_annotations,
        write_headers,
    )

    copies = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    lines = [f"bench_luna16  {time.strftime('%Y-%m-%d %H:%M:%S')}  {platform.platform()}  "
             f"python {platform.python_version()}  cpus {os.cpu_count()}",
             "(a shared machine: other jobs run at the same time; compare runs on one machine)"]
    rows = read_annotations(LUNA16 / "annotations.csv")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _write_table(rows, folder / "real.csv")
        write_headers(luna16_series(rows), folder / "real-images")
        _bench("real table", folder / "real.csv", folder / "real-images", None, lines)
        like, series, join = luna16_like(rows, copies)
        _write_table(like, folder / "like.csv")
        (folder / "series-map.txt").write_text(join, encoding="utf-8")
        write_headers(series, folder / "like-images")
        _bench(f"LUNA16-shaped table, {copies} x", folder / "like.csv",
               folder / "like-images", folder / "series-map.txt", lines)
    text = "\n".join(lines) + "\n"
    RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
