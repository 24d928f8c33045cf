"""pixelmed's DicomSRValidator (opt-in): run many files in one JVM, parse its stdout.

java and the jar are found by :mod:`csv2sr.tools`.

DicomSRValidator checks the IOD and the templates (PS3.16) with XSLT.  Its exit code is
always 0, so its stdout is the only result; on Java 17 the JDK's XPath limits must be lifted
or it prints nothing.  Its ``main`` takes one file, and a JVM costs seconds, so a tiny Java
program (:data:`BATCH_SOURCE`, run by Java 11+'s single-file source launcher) validates
every file in one JVM (the file names are read from a list file, one per line) and marks
where each file's output begins and ends.
"""

from __future__ import annotations

import functools
import re
import subprocess
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from csv2sr.validate.findings import Finding, Severity, Source

__all__ = [
    "BATCH_SOURCE",
    "JAVA_OPTIONS",
    "parse_output",
    "parse_stream",
    "run_pixelmed",
    "version",
]

JAVA_OPTIONS = (
    "-Djdk.xml.xpathExprOpLimit=0",
    "-Djdk.xml.xpathExprGrpLimit=0",
    "-Djdk.xml.xpathTotalOpLimit=0",
)
"""Without these, Java 17's XPath limits make DicomSRValidator print nothing."""

BEGIN, END = "@@csv2sr-file@@ ", "@@csv2sr-end@@"

BATCH_SOURCE = f"""\
import com.pixelmed.validate.DicomSRValidator;
public class Csv2srPixelmedBatch {{
    public static void main(String[] args) throws Exception {{
        DicomSRValidator validator = new DicomSRValidator();
        java.util.List<String> names = java.nio.file.Files.readAllLines(
            java.nio.file.Paths.get(args[0]), java.nio.charset.StandardCharsets.UTF_8);
        for (String name : names) {{
            System.out.println("{BEGIN}" + name);
            try {{
                System.out.print(validator.validate(name));
            }} catch (Exception e) {{
                System.out.println("Error: exception: " + e);
            }}
            System.out.println("{END}");
            System.out.flush();
        }}
    }}
}}
"""

_LINE = re.compile(r"^(Error|Warning):\s*(.*)$")
_ITEM = re.compile(r":\s(1(?:\.\d+)*):\s(/[^:]*?)(?::\s|$)")


@functools.cache
def version(jar: Path) -> str | None:
    """The jar's build (``pixelmed-20220618.jar`` -> ``20220618``) or its manifest version."""
    resolved = jar.resolve()
    match = re.search(r"(\d{8})", resolved.name)
    if match:
        return match.group(1)
    try:
        with zipfile.ZipFile(resolved) as archive:
            manifest = archive.read("META-INF/MANIFEST.MF").decode("utf-8", "replace")
    except (OSError, KeyError, zipfile.BadZipFile):
        return resolved.name
    for line in manifest.splitlines():
        if line.startswith("Implementation-Version:"):
            return line.split(":", 1)[1].strip()
    return resolved.name


def run_pixelmed(
    java: Path, jar: Path, paths: Sequence[Path], timeout: float | None = None
) -> dict[str, list[Finding]]:
    """Validate every file in one JVM; ``str(path)`` -> findings.

    ``timeout`` defaults to 120 s for the JVM plus 5 s per file.
    """
    if not paths:
        return {}
    limit = timeout if timeout is not None else 120.0 + 5.0 * len(paths)
    with tempfile.TemporaryDirectory(prefix="csv2sr-pixelmed-") as tmp:
        source = Path(tmp) / "Csv2srPixelmedBatch.java"
        source.write_text(BATCH_SOURCE, encoding="utf-8")
        listing = Path(tmp) / "files.txt"
        listing.write_text("".join(f"{p}\n" for p in paths), encoding="utf-8")
        command = [str(java), *JAVA_OPTIONS, "-cp", str(jar), str(source), str(listing)]
        try:
            done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=limit, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            failure = Finding(Severity.ERROR, Source.PIXELMED, "", "",
                              f"pixelmed could not validate: {exc}", transient=True)
            return {str(p): [failure] for p in paths}
    results = parse_stream(done.stdout.decode("utf-8", "replace"))
    for p in paths:
        if str(p) not in results:
            stderr = done.stderr.decode("utf-8", "replace").strip().splitlines()
            results[str(p)] = [Finding(Severity.ERROR, Source.PIXELMED, "", "",
                                       "pixelmed gave no output for this file"
                                       + (f": {stderr[-1]}" if stderr else ""),
                                       transient=True)]
    return results


def parse_stream(stdout: str) -> dict[str, list[Finding]]:
    """Split the batch program's stdout at its file markers and parse each part."""
    results: dict[str, list[Finding]] = {}
    current: str | None = None
    lines: list[str] = []
    for line in stdout.splitlines():
        if line.startswith(BEGIN):
            current, lines = line[len(BEGIN):], []
        elif line == END and current is not None:
            results[current] = parse_output("\n".join(lines))
            current = None
        elif current is not None:
            lines.append(line)
    return results


def parse_output(text: str) -> list[Finding]:
    """DicomSRValidator's report of one file: ``Error:``/``Warning:`` lines, the rest info.

    An error line looks like ``Error: Template 1500 .../[Row 4] CODE (...): 1.3:
    /CONTAINER (...)/CODE (...): Code (...) not found in context group 100``; the content
    item id (``1.3``) and the concept path that follow the template path are extracted.
    """
    findings: list[Finding] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        match = _LINE.match(line)
        if match is None:
            findings.append(Finding(Severity.INFO, Source.PIXELMED, "", "", line))
            continue
        severity = Severity.ERROR if match.group(1) == "Error" else Severity.WARNING
        body = match.group(2)
        where = _ITEM.search(body)
        item, attribute = (where.group(1), where.group(2).strip()) if where else ("", "")
        findings.append(Finding(severity, Source.PIXELMED, item, attribute, body))
    return findings
