"""Benchmark the legacy SR XML pipeline: csv2sr against pixelmed's per-file JVM.

    python benchmarks/bench_srxml.py [--jvm-sample N] [--jvm-all]

The real CSV (../shared/data/ccc2017/) is converted first (not timed), to get the UIDs the
test stylesheet reads and the 2,345 SRs pixelmed's toXML turns into SR XML.  Then, each in
a fresh process with its wall time and peak resident memory:

* ``make -f docs/examples/legacy-srxml.mk`` up to the DICOM files: ``csv2sr xslt`` (SaxonC-HE,
  the table to 2,345 SR XML files) and ``csv2sr sr-xml to-dicom --pixelmed-compatible``;
* ``csv2sr sr-xml to-dicom`` alone, on pixelmed's own 2,345 SR XML files (one process, and
  the default of one per CPU), and ``to-xml``;
* pixelmed's toDICOM as the legacy Makefile ran it, one ``java`` per file: on N files
  (``--jvm-sample``, default 20) and projected to 2,345, or on every file (``--jvm-all``,
  about an hour);
* pixelmed's toDICOM on every file in one JVM (the tests' caller), for comparison.

Results are printed and written to ``benchmarks/results/srxml.txt``.  Needs java, javac,
pixelmed.jar (Debian libpixelmed-java) and saxonche.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
REAL_CSV = ROOT.parent / "shared" / "data" / "ccc2017" / "CrowdsCureCancer2017Annotations.csv"
RESULTS = ROOT / "benchmarks" / "results" / "srxml.txt"
MAKEFILE = ROOT / "docs" / "examples" / "legacy-srxml.mk"
STYLESHEET = ROOT / "tests" / "data" / "ccc2017-to-srxml.xsl"
CSV2SR = [sys.executable, "-m", "csv2sr"]
FACTORY = "com.pixelmed.dicom.XMLRepresentationOfStructuredReportObjectFactory"

_MEASURE = (
    "import resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
    "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,"
    " rc)\n"
)


def measure(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of ``command`` run in a fresh process; it must succeed."""
    done = subprocess.run([sys.executable, "-c", _MEASURE, *command], capture_output=True,
                          text=True, check=True)
    seconds, kib, rc = done.stdout.split()
    if rc != "0":
        raise SystemExit(f"failed ({rc}): {' '.join(command)}\n{done.stderr[-2000:]}")
    return float(seconds), int(kib) / 1024


def _line(label: str, files: int, seconds: float, mib: float | None, note: str = "") -> str:
    rate = files / seconds if seconds else 0.0
    memory = f"{mib:7.0f} MiB" if mib is not None else "      - MiB"
    return (f"{label:<58} {files:5d} files {seconds:9.1f} s {rate:8.1f} files/s "
            f"{1000 * seconds / files:9.1f} ms/file {memory}{note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jvm-sample", type=int, default=20)
    parser.add_argument("--jvm-all", action="store_true")
    args = parser.parse_args()
    from csv2sr.conversion.batch import convert  # noqa: PLC0415
    from pixelmed_srxml import PixelmedSrXml, available  # noqa: PLC0415
    from test_xslt import _codes_xml  # noqa: PLC0415

    found = available()
    if found is None:
        raise SystemExit("bench_srxml: java, javac and pixelmed.jar are needed")
    java, jar = found
    lines = [f"# csv2sr SR XML pipeline; {platform.node()}, {platform.processor() or '?'}, "
             f"python {platform.python_version()}; {time.strftime('%Y-%m-%d %H:%M')}"]
    with tempfile.TemporaryDirectory(prefix="bench-srxml-") as tmp:
        work = Path(tmp)
        converted = work / "convert"
        assert convert(REAL_CSV, converted).converted == 2345
        sources = sorted((converted / "sr").rglob("*.dcm"))
        codes = _codes_xml(work / "codes.xml")
        pixelmed = PixelmedSrXml(java, jar, work)
        pm_xml = work / "pm-xml"
        pm_xml.mkdir()
        pixelmed.to_xml([(s, pm_xml / (s.stem + ".xml")) for s in sources])
        xmls = sorted(pm_xml.glob("*.xml"))
        n = len(xmls)

        out = work / "make"
        seconds, mib = measure([
            "make", "-s", "-f", str(MAKEFILE), f"{out}/dcm.stamp", f"OUT={out}",
            f"CSV={REAL_CSV}", f"STYLESHEET={STYLESHEET}", f"CSV2SR={' '.join(CSV2SR)}",
            f"PARAMS=--param codes={codes.as_uri()} "
            f"--param manifest={(converted / 'manifest.csv').as_uri()}"])
        lines.append(_line("make legacy-srxml.mk: csv2sr xslt + sr-xml to-dicom", n,
                           seconds, mib))
        for label, command in (
            ("csv2sr sr-xml to-dicom (pixelmed's XML), 1 process",
             [*CSV2SR, "sr-xml", "to-dicom", str(pm_xml), "-o", str(work / "d0"), "-q",
              "--jobs", "1"]),
            ("csv2sr sr-xml to-dicom (pixelmed's XML)",
             [*CSV2SR, "sr-xml", "to-dicom", str(pm_xml), "-o", str(work / "d1"), "-q"]),
            ("csv2sr sr-xml to-dicom --pixelmed-compatible",
             [*CSV2SR, "sr-xml", "to-dicom", str(pm_xml), "-o", str(work / "d2"), "-q",
              "--pixelmed-compatible"]),
            ("csv2sr sr-xml to-xml",
             [*CSV2SR, "sr-xml", "to-xml", str(converted / "sr"), "-o", str(work / "x1"),
              "-q"]),
        ):
            seconds, mib = measure(command)
            lines.append(_line(label, n, seconds, mib))

        one_jvm = [("toDICOM", x, work / "j1" / (x.stem + ".dcm")) for x in xmls]
        (work / "j1").mkdir()
        start = time.perf_counter()
        pixelmed.run(one_jvm)
        lines.append(_line("pixelmed toDICOM, all files in one JVM (tests' caller)", n,
                           time.perf_counter() - start, None))

        chosen = xmls if args.jvm_all else random.Random(1).sample(xmls, args.jvm_sample)
        per_file = []
        peak = 0.0
        for xml in chosen:
            seconds, mib = measure(["sh", "-c", f'"$0" -cp "$1" {FACTORY} toDICOM "$2" '
                                    '> "$3"', str(java), str(jar), str(xml),
                                    str(work / "j2.dcm")])
            per_file.append(seconds)
            peak = max(peak, mib)
        total = sum(per_file)
        label = "pixelmed toDICOM, one java per file (legacy Makefile)"
        if args.jvm_all:
            lines.append(_line(label, len(chosen), total, peak))
        else:
            median = statistics.median(per_file)
            lines.append(_line(label, len(chosen), total, peak,
                               f"  (sample; median {median:.2f} s/file)"))
            lines.append(_line("  ... projected to every file (median x 2,345)", n,
                               median * n, None))
    text = "\n".join(lines) + "\n"
    print(text, end="")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
