"""Benchmark LUNA16-shaped tables (issue 11): a series UID and a centre in patient mm per
row, the study and patient from a join table, SCOORD3D in Comprehensive 3D SRs.

    python benchmarks/bench_luna16.py [N_ROWS]

Set-up (not timed): synthetic CT headers for the series of the first ``N_ROWS`` rows
(default: all 1,117) of ``../shared/data/luna16/annotations.csv`` (tests/luna16gen.py, 6
slices per series, no pixel data).  Timed: the header index of the folder, then
``convert`` of the table with the index (one SR per series), with 2 worker processes.
The load average is printed beside each figure (a shared machine).  Results are printed
and written to ``benchmarks/results/luna16.txt``.
"""

from __future__ import annotations

import csv
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
RESULTS = ROOT / "benchmarks" / "results" / "luna16.txt"
PROFILE = ROOT / "tests" / "data" / "luna16" / "luna16.toml"


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def main() -> None:
    from csv2sr.conversion.batch import convert  # noqa: PLC0415
    from csv2sr.images.index import ImageIndex  # noqa: PLC0415
    from csv2sr.mapping.load import load_profile  # noqa: PLC0415
    from luna16gen import LUNA16, luna16_series, read_annotations, write_headers  # noqa: PLC0415

    rows = read_annotations(LUNA16 / "annotations.csv")
    if len(sys.argv) > 1:
        rows = rows[: int(sys.argv[1])]
    lines = [f"bench_luna16  {time.strftime('%Y-%m-%d %H:%M:%S')}  {platform.platform()}  "
             f"python {platform.python_version()}  cpus {os.cpu_count()}",
             "(a shared machine: other jobs run at the same time; compare runs on one machine)"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        table = folder / "annotations.csv"
        with table.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        series = luna16_series(rows)
        files = write_headers(series, folder / "images")
        started = time.perf_counter()
        index = ImageIndex.from_folder(folder / "images")
        seconds = time.perf_counter() - started
        lines.append(f"index {len(files)} headers of {len(series)} series: {seconds:.2f} s = "
                     f"{len(files) / seconds:.0f} files/s ({_load()})")
        started = time.perf_counter()
        result = convert(table, folder / "out", profile=load_profile(PROFILE), images=index,
                         jobs=2)
        seconds = time.perf_counter() - started
        lines.append(f"convert {result.rows_read} rows -> {result.documents} SRs "
                     f"({result.rejected} rejected), 2 jobs, byte templates (SCOORD3D "
                     f"slots): {seconds:.1f} s = {result.documents / seconds:.1f} SR/s, "
                     f"{result.rows_read / seconds:.1f} rows/s ({_load()})")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
