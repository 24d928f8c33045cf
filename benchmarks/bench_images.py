"""Benchmark the source-image index and cross-checks (issue 6): files/s, rows/s, peak memory.

    python benchmarks/bench_images.py [N_FILES]
    python benchmarks/bench_images.py --cache-only [N_FILES]   (the index cache alone)

Set-up (not timed): synthetic CT images are written to a temporary folder by
``tests/imagegen.py`` -- one per annotated instance of the real CSV (1,466 files, the
table's own UIDs) and ``N_FILES`` more (default 3,000) in series of 100 slices.  Each
configuration then runs in a fresh Python process, so that its peak resident memory
(``resource.getrusage``: the process and its largest worker) is its own.  Results are
printed and written to ``benchmarks/results/images.txt`` (``--cache-only``: printed only).

The index cache (``ImageIndex.from_folder(cache_in=OUT)``, issue 11) is measured on the
same folders: a first run (headers read, cache written) and a second run in a fresh
process (the cache read instead of the headers).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REAL_CSV = ROOT.parent / "shared" / "data" / "ccc2017" / "CrowdsCureCancer2017Annotations.csv"
RESULTS = ROOT / "benchmarks" / "results" / "images.txt"
ENCODE_ROWS = 300


def _peak_mib() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, child


def _child_index(folder: str, jobs: int) -> dict[str, float]:
    import pickle  # noqa: PLC0415

    from csv2sr.images.index import ImageIndex  # noqa: PLC0415

    started = time.perf_counter()
    index = ImageIndex.from_folder(Path(folder), jobs=jobs)
    seconds = time.perf_counter() - started
    own, child = _peak_mib()
    return {
        "items": len(index), "seconds": seconds, "rate": len(index) / seconds,
        "peak_mib": own, "worker_peak_mib": child,
        "pickle_kib": len(pickle.dumps(index)) / 1024,
    }


def _child_cached(folder: str, out: str) -> dict[str, float]:
    from csv2sr.images.index import ImageIndex  # noqa: PLC0415

    started = time.perf_counter()
    index = ImageIndex.from_folder(Path(folder), jobs=1, cache_in=Path(out))
    seconds = time.perf_counter() - started
    own, _ = _peak_mib()
    size = sum(p.stat().st_size for p in (Path(out) / "cache").iterdir())
    return {"items": len(index), "seconds": seconds, "rate": len(index) / seconds,
            "cached": float(index.cached), "cache_kib": size / 1024, "peak_mib": own}


def _cache_lines(label: str, folder: Path, tmp: Path) -> list[str]:
    """The index of ``folder`` twice, each in a fresh process: scan + write, then read."""
    out = tmp / f"cache-out-{folder.name}"
    lines = []
    for run in ("first run (scan, cache written)", "second run (cache read)"):
        r = _run(["cached", str(folder), str(out)])
        lines.append(
            f"{label}, index cache, {run}: {r['items']:.0f} headers in {r['seconds']:.2f} s "
            f"= {r['rate']:.0f} files/s; cache {r['cache_kib']:.0f} KiB; peak RSS "
            f"{r['peak_mib']:.0f} MiB; load average {os.getloadavg()[0]:.1f}"
        )
        print(lines[-1], flush=True)
    return lines


def cache_only(count: int) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from imagegen import write_many  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="bench-images-") as tmp:
        bulk = Path(tmp) / "bulk"
        write_many(bulk, count)
        _cache_lines(f"index {count} files", bulk, Path(tmp))


def _child_rows(folder: str, csv_path: str, encode_rows: int) -> dict[str, float]:
    from csv2sr.conversion.build import encode  # noqa: PLC0415
    from csv2sr.conversion.checks import Record, read_rows  # noqa: PLC0415
    from csv2sr.dicom.codes import CodeMode  # noqa: PLC0415
    from csv2sr.images.checks import check_row_against_image  # noqa: PLC0415
    from csv2sr.images.enrich import enriched_header  # noqa: PLC0415
    from csv2sr.images.index import ImageIndex  # noqa: PLC0415
    from csv2sr.mapping.load import load_profile  # noqa: PLC0415

    profile = load_profile("ccc2017")
    index = ImageIndex.from_folder(Path(folder), jobs=1)
    rows = [r for r in read_rows(Path(csv_path), profile) if isinstance(r, Record)]
    started = time.perf_counter()
    checked = [check_row_against_image(r, index, path=Path(csv_path), spec=profile)
               for r in rows]
    check_seconds = time.perf_counter() - started
    problems = sum(bool(p) for _, p in checked)
    started = time.perf_counter()
    for row, (header, _) in list(zip(rows, checked, strict=True))[:encode_rows]:
        assert header is not None
        headers = {row.images[0].sop_instance_uid: enriched_header(header, row)}
        encode(row, profile, CodeMode.SCT, headers=headers)
    encode_seconds = time.perf_counter() - started
    own, _ = _peak_mib()
    return {
        "items": len(rows), "seconds": check_seconds, "rate": len(rows) / check_seconds,
        "rows_with_problems": problems,
        "encode_rows": encode_rows, "encode_rate": encode_rows / encode_seconds,
        "peak_mib": own,
    }


def _child_validate(folder: str, csv_path: str, tmp: str) -> dict[str, float]:
    from csv2sr.conversion.batch import convert  # noqa: PLC0415
    from csv2sr.images.cross import validate_against_images  # noqa: PLC0415
    from csv2sr.images.index import ImageIndex  # noqa: PLC0415

    convert(Path(csv_path), Path(tmp) / "srs", jobs=1)  # the fast path, not timed
    srs = sorted((Path(tmp) / "srs" / "sr").rglob("*.dcm"))
    index = ImageIndex.from_folder(Path(folder), jobs=1)
    started = time.perf_counter()
    findings = validate_against_images(srs, index)
    seconds = time.perf_counter() - started
    own, child = _peak_mib()
    return {
        "items": len(srs), "seconds": seconds, "rate": len(srs) / seconds,
        "findings": len(findings), "peak_mib": own, "worker_peak_mib": child,
    }


def _run(args: list[str]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True, text=True, check=True,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _setup(tmp: Path, count: int) -> tuple[Path, Path]:
    sys.path.insert(0, str(ROOT / "tests"))
    from imagegen import write_images_like, write_many  # noqa: PLC0415

    real = tmp / "real-like"
    bulk = tmp / "bulk"
    started = time.perf_counter()
    write_images_like(REAL_CSV, real)
    write_many(bulk, count)
    print(f"set-up: images written in {time.perf_counter() - started:.1f} s (not timed)")
    return real, bulk


def main(count: int) -> None:
    if not REAL_CSV.is_file():
        sys.exit(f"the real CSV is not at {REAL_CSV}")
    lines = [
        f"bench_images  {time.strftime('%Y-%m-%d %H:%M:%S')}  {platform.platform()}  "
        f"python {platform.python_version()}  cpus {os.cpu_count()}",
        "(a shared machine: other jobs run at the same time; compare runs on one machine)",
    ]
    with tempfile.TemporaryDirectory(prefix="bench-images-") as tmp:
        real, bulk = _setup(Path(tmp), count)
        for label, folder in ((f"index {count} files", bulk), ("index 1466 real-like", real)):
            for jobs in (1, 2):
                r = _run(["index", str(folder), str(jobs)])
                lines.append(
                    f"{label}, {jobs} job(s): {r['items']:.0f} headers in {r['seconds']:.2f} s "
                    f"= {r['rate']:.0f} files/s; peak RSS {r['peak_mib']:.0f} MiB "
                    f"(worker {r['worker_peak_mib']:.0f} MiB); index pickles to "
                    f"{r['pickle_kib']:.0f} KiB"
                )
                print(lines[-1], flush=True)
            lines.extend(_cache_lines(label, folder, Path(tmp)))
        r = _run(["rows", str(real), str(REAL_CSV), str(ENCODE_ROWS)])
        lines.append(
            f"check_row_against_image, real CSV: {r['items']:.0f} rows in {r['seconds']:.2f} s "
            f"= {r['rate']:.0f} rows/s ({r['rows_with_problems']:.0f} with problems); "
            f"enriched_header + encode (highdicom): {r['encode_rate']:.1f} SR/s over "
            f"{r['encode_rows']:.0f} rows; peak RSS {r['peak_mib']:.0f} MiB"
        )
        print(lines[-1], flush=True)
        r = _run(["validate", str(real), str(REAL_CSV), tmp])
        lines.append(
            f"validate_against_images, 2,345 SRs made without --images: {r['seconds']:.1f} s "
            f"= {r['rate']:.0f} SR/s, dcentvfy per study included ({r['findings']:.0f} "
            f"warnings: what the images have and the SRs lack); peak RSS "
            f"{r['peak_mib']:.0f} MiB"
        )
        print(lines[-1], flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    partial = RESULTS.with_suffix(".txt.tmp")
    partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(partial, RESULTS)
    print(f"written {RESULTS}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, *rest = sys.argv[2:]
        if kind == "index":
            out = _child_index(rest[0], int(rest[1]))
        elif kind == "cached":
            out = _child_cached(rest[0], rest[1])
        elif kind == "validate":
            out = _child_validate(rest[0], rest[1], rest[2])
        else:
            out = _child_rows(rest[0], rest[1], int(rest[2]))
        print(json.dumps(out))
    elif len(sys.argv) > 1 and sys.argv[1] == "--cache-only":
        cache_only(int(sys.argv[2]) if len(sys.argv) > 2 else 3000)
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000)
