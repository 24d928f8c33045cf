"""Run pixelmed's own SR XML converter many times in one JVM (a caller, not a copy).

``XMLRepresentationOfStructuredReportObjectFactory.main(toDICOM|toXML, file)`` writes its
result to standard output and exits 0 even on failure.  The caller below, compiled with
``javac`` at test time, calls that ``main`` once per line of a list file (mode, input,
output) with ``System.out`` pointed at the output file, so 2,345 files cost one JVM start
instead of 2,345.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from csv2sr.tools import find_java, find_pixelmed_jar

CLASS = "Csv2srSrXmlBatch"
FACTORY = "com.pixelmed.dicom.XMLRepresentationOfStructuredReportObjectFactory"
SOURCE = f"""\
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
public class {CLASS} {{
    public static void main(String[] args) throws Exception {{
        PrintStream console = System.out;
        for (String line : Files.readAllLines(Paths.get(args[0]), StandardCharsets.UTF_8)) {{
            String[] job = line.split("\\t");
            try (PrintStream target = new PrintStream(
                    new BufferedOutputStream(new FileOutputStream(job[2])), false)) {{
                System.setOut(target);
                {FACTORY}.main(new String[] {{job[0], job[1]}});
                target.flush();
            }} finally {{
                System.setOut(console);
            }}
        }}
    }}
}}
"""


class PixelmedSrXml:
    """pixelmed's toDICOM/toXML for many files in one JVM."""

    def __init__(self, java: Path, jar: Path, workdir: Path) -> None:
        self.java, self.jar, self.workdir = java, jar, workdir
        javac = shutil.which("javac") or str(java.parent / "javac")
        source = workdir / f"{CLASS}.java"
        source.write_text(SOURCE, encoding="utf-8")
        subprocess.run([javac, "-cp", str(jar), "-d", str(workdir), str(source)], check=True,
                       capture_output=True, timeout=300)
        self.runs = 0

    def run(self, jobs: list[tuple[str, Path, Path]], timeout: float = 1800.0) -> str:
        """Run every (mode, input, output) job; returns pixelmed's stderr."""
        self.runs += 1
        listing = self.workdir / f"jobs-{self.runs}.txt"
        listing.write_text("".join(f"{m}\t{i}\t{o}\n" for m, i, o in jobs), encoding="utf-8")
        done = subprocess.run(
            [str(self.java), "-cp", f"{self.jar}:{self.workdir}", CLASS, str(listing)],
            capture_output=True, timeout=timeout, check=True, stdin=subprocess.DEVNULL)
        return done.stderr.decode("utf-8", "replace")

    def to_dicom(self, pairs: list[tuple[Path, Path]]) -> str:
        return self.run([("toDICOM", xml, dcm) for xml, dcm in pairs])

    def to_xml(self, pairs: list[tuple[Path, Path]]) -> str:
        return self.run([("toXML", dcm, xml) for dcm, xml in pairs])


def available() -> tuple[Path, Path] | None:
    """(java, jar) when both are installed and javac is there to compile the caller."""
    java, jar = find_java(), find_pixelmed_jar()
    if java is None or jar is None:
        return None
    if shutil.which("javac") is None and not (java.resolve().parent / "javac").exists():
        return None
    return java, jar
