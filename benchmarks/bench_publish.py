"""Benchmark ``csv2sr publish``: the 2,345 real SRs into a local Orthanc, STOW-RS vs C-STORE.

    python benchmarks/bench_publish.py

The real CSV (../shared/data/ccc2017/) is converted first into a temporary folder (not
timed).  Each configuration publishes into a fresh Orthanc (Debian ``orthanc`` and
``orthanc-dicomweb``, started by ``tests/orthanc.py`` on free loopback ports, storage in the
temporary folder) from a fresh ``csv2sr publish`` process: wall time of the whole command
(start-up and reading every file included), files/s over that time, the tool's own
sending rate (its summary line), and the peak resident memory of the publishing process
(``wait4``).  "again" reruns the first configuration: the journal confirms everything and
nothing is sent.  "verify" is the QIDO-RS / C-FIND look-up of every file.  Orthanc runs on
the same machine and shares its CPUs: these figures bound the client, they do not measure a
PACS.  Orthanc's DICOM server runs with ``TCP_NODELAY=1`` (DCMTK then sends its C-STORE
responses without Nagle's delay) except in the last row, which shows what that costs.
The load average is printed before and after.  Results are printed and written to
``benchmarks/results/publish.txt``.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REAL_CSV = ROOT.parent / "shared" / "data" / "ccc2017" / "CrowdsCureCancer2017Annotations.csv"
RESULTS = ROOT / "benchmarks" / "results" / "publish.txt"
sys.path.insert(0, str(ROOT / "tests"))

from orthanc import AET, OrthancServer, make_server, skip_reason  # noqa: E402

NAGLE_OFF = {"TCP_NODELAY": "1"}  # DCMTK (in Orthanc) then answers without Nagle's delay
CONFIGS = (
    # (label, protocol, extra options, None: same server, else a fresh one with this env)
    ("STOW-RS, batch 50, 4 in flight", "stow", ("--batch", "50", "--concurrency", "4"), {}),
    ("  again (all confirmed)", "stow", ("--batch", "50", "--concurrency", "4"), None),
    ("  verify (QIDO-RS, 4 in flight)", "stow", ("--concurrency", "4", "--verify"), None),
    ("STOW-RS, batch 50, 1 in flight", "stow", ("--batch", "50", "--concurrency", "1"), {}),
    ("STOW-RS, batch 1, 1 in flight", "stow", ("--batch", "1", "--concurrency", "1"), {}),
    ("C-STORE, 1 association", "dimse", ("--concurrency", "1"), NAGLE_OFF),
    ("C-STORE, 4 associations", "dimse", ("--concurrency", "4"), NAGLE_OFF),
    ("  verify (C-FIND, 1 association)", "dimse", ("--concurrency", "1", "--verify"), None),
    ("C-STORE, 1 assoc., server with Nagle", "dimse", ("--concurrency", "1"), {}),
)
SUMMARY = re.compile(r"sent (\d+), already there (\d+), failed (\d+).* in ([\d.]+) s "
                     r"\(([\d.]+) files/s\)")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _convert(out: Path) -> Path:
    subprocess.run([sys.executable, "-m", "csv2sr", "convert", str(REAL_CSV), "-o", str(out),
                    "-q"], check=True)
    return out


def _run(release: Path, server: OrthancServer, protocol: str, options: tuple[str, ...],
         journal: Path) -> tuple[float, float, str, float]:
    """(wall s, peak MB of the publishing process, its summary line, its sent/s)."""
    target = (("--url", server.dicomweb) if protocol == "stow"
              else ("--dimse", server.dimse, "--called-aet", AET))
    command = [sys.executable, "-m", "csv2sr", "publish", str(release / "sr"), *target,
               "--journal-dir", str(journal), *options]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(process.pid, 0)  # reaped here: its own peak memory
        seconds = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        raise SystemExit(f"publish failed ({process.returncode}):\n{stdout}\n{stderr[-2000:]}")
    found = SUMMARY.search(stdout)
    return seconds, usage.ru_maxrss / 1024, stdout.strip().splitlines()[0], (
        float(found.group(5)) if found else 0.0)


def main() -> None:
    reason = skip_reason()
    if reason is not None:
        raise SystemExit(f"bench_publish: {reason}")
    if not REAL_CSV.is_file():
        raise SystemExit(f"bench_publish: the real CSV is not at {REAL_CSV}")
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"csv2sr publish benchmark, {stamp}, CPython {platform.python_version()}, "
             f"{os.cpu_count()} CPUs (shared with Orthanc), load average before {_load()}",
             f"{'configuration':36} {'files':>6} {'wall s':>7} {'files/s':>8} "
             f"{'sent/s':>7} {'peak MB':>8}"]
    print(lines[0], flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-publish-") as tmp:
        release = _convert(Path(tmp) / "rel")
        files = sum(1 for _ in (release / "sr").rglob("*.dcm"))
        server: OrthancServer | None = None
        journal = Path(tmp) / "journal"
        try:
            for n, (label, protocol, options, env) in enumerate(CONFIGS):
                if env is not None:
                    if server is not None:
                        server.stop()
                    server = make_server(Path(tmp) / f"orthanc-{n}", env=env)
                    server.start()
                    journal = Path(tmp) / f"journal-{n}"
                assert server is not None
                seconds, peak, summary, rate = _run(release, server, protocol, options, journal)
                row = (f"{label:36} {files:>6} {seconds:>7.1f} {files / seconds:>8.0f} "
                       f"{rate:>7.0f} {peak:>8.0f}")
                lines.append(row)
                print(row, f"   [{summary}]", flush=True)
        finally:
            if server is not None:
                server.stop()
    lines.append(f"load average after {_load()}")
    print(lines[-1])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
