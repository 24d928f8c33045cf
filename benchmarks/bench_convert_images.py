"""`csv2sr convert --images` end to end on the real CCC2017 CSV (issue 11, Speed).

    python benchmarks/bench_convert_images.py [--reference]

Set-up (not timed): one synthetic CT header per annotated instance of the real CSV
(1,466 files, the table's own UIDs: ``tests/imagegen.py`` ``write_images_like``), so that
every one of the 2,345 rows has its image.  Timed, each in its own process (measure.py):
the image index build alone (``ImageIndex.from_folder``: the headers read and the index
kept in OUTDIR/cache/, as a first run does; imports excluded), then
``csv2sr convert --images`` (templates; with ``--reference`` also highdicom for every row),
then the same command again into the same output folder (the index read from its cache in
OUTDIR/cache/, the unchanged SRs left as they are), in each of ``BENCH_ROUNDS`` (3)
rounds; the median round is the figure.  SR/s is given end to end and, for the
first run, without the index build.  Results are printed and written
to ``benchmarks/results/convert-images.txt``.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import Run, index_seconds, load, record
from measure import run as measure

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT.parent / "shared" / "data" / "ccc2017" / "CrowdsCureCancer2017Annotations.csv"
RESULTS = ROOT / "benchmarks" / "results" / "convert-images.txt"

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
"""Rounds of index build, first run and second run; the median round (by SR/s without the
index build) is the figure: this shared machine's speed changes from one minute to the
next (the same code gave 361 and 548 SR/s in two runs, its CPU time 12.2 s and 7.9 s)."""


class _Round(NamedTuple):
    rows: int
    index_seconds: float
    first: Run
    second: Run

    @property
    def without_index(self) -> float:
        """SR/s of the first run without the index build."""
        return self.rows / max(self.first.seconds - self.index_seconds, 1e-9)


def _round(images: Path, builder: str, extra: tuple[str, ...], number: int,
           lines: list[str]) -> _Round:
    """One round (index build, first run, second run), its lines printed."""
    before = load()
    count, seconds = index_seconds(images)
    line = (f"round {number}: index of {count} synthetic headers: {seconds:.2f} s = "
            f"{count / seconds:.0f} files/s  load {before:.2f}->{load():.2f}")
    print(line, flush=True)
    lines.append(line)
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "csv2sr", "convert", str(REAL), "-o", out,
                   "--quiet", "--images", str(images), *extra]
        measured = measure(command)
        rows = sum(1 for _ in Path(out, "sr").rglob("*.dcm"))
        again = measure(command)  # the index from OUTDIR/cache/, the SRs unchanged
    done = _Round(rows, seconds, measured, again)
    for name, run, shown in (("", measured, f"{done.without_index:>11.0f}"),
                             (", second run", again, f"{'(cached)':>11}")):
        line = (f"{'real CSV (2,345 rows) --images' + name:<44}{builder:<12}{rows:>7}"
                f"{run.seconds:>9.1f}{rows / run.seconds:>8.0f}{shown}"
                f"{run.cpu_seconds:>8.1f}{run.tree_peak_mib:>10.0f}  {run.load}")
        print(line, flush=True)
        lines.append(line)
    return done


def main() -> None:
    if not REAL.is_file():
        sys.exit(f"the real CSV is not at {REAL}")
    sys.path.insert(0, str(ROOT / "tests"))
    from imagegen import write_images_like  # noqa: PLC0415  (the tests' generator)

    lines = [
        f"csv2sr convert --images, end to end (process start, imports, index, files "
        f"written); {os.cpu_count()} CPUs, Python {platform.python_version()}",
    ]
    builders = [("template", ())]
    if "--reference" in sys.argv[1:]:
        builders.append(("highdicom", ("--reference-builder",)))
    with tempfile.TemporaryDirectory() as tmp:
        images = Path(tmp) / "images"
        write_images_like(REAL, images)
        lines.append(f"{'input':<44}{'builder':<12}{'rows':>7}{'seconds':>9}{'SR/s':>8}"
                     f"{'w/o index':>11}{'CPU s':>8}{'tree MiB':>10}  load")
        for builder, extra in builders:
            rounds = [_round(images, builder, extra, n, lines) for n in range(1, ROUNDS + 1)]
            rows, seconds, measured, again = median = sorted(
                rounds, key=lambda r: r.without_index)[len(rounds) // 2]
            without = median.without_index
            line = (f"median of {ROUNDS} rounds ({builder}): {without:.0f} SR/s without the "
                    f"index build ({measured.seconds:.1f} s, index {seconds:.2f} s), second "
                    f"run {rows / again.seconds:.0f} SR/s ({again.seconds:.1f} s)")
            print(line, flush=True)
            lines.append(line)
            record(f"convert real CSV --images, {builder}", measured, rows=rows,
                   rate=round(rows / measured.seconds, 1), rate_without_index=round(without, 1),
                   index_seconds=round(seconds, 3),
                   second_run_seconds=round(again.seconds, 3),
                   second_run_rate=round(rows / again.seconds, 1), rounds=ROUNDS)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
