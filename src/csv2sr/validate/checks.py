"""csv2sr's own checks of one file, in order: container, IOD, content, TID 1500, codes.

Pure Python, no network.  A file that is not DICOM, empty or truncated gives findings,
never an exception: anything pydicom raises while the tree is walked becomes an error.
"""

from __future__ import annotations

import logging
import stat
import warnings
from pathlib import Path

from pydicom import Dataset

from csv2sr.validate.access import text, walk
from csv2sr.validate.coding import check_codes
from csv2sr.validate.container import open_dataset, sr_class_findings
from csv2sr.validate.content import build_tree, check_content
from csv2sr.validate.findings import Finding, Severity, Source
from csv2sr.validate.iod import check_attributes, check_values
from csv2sr.validate.references import check_references
from csv2sr.validate.tid1500 import check_tid1500, is_tid1500

__all__ = ["check_dataset", "check_file", "check_files"]

log = logging.getLogger(__name__)


def _error(message: str, *, transient: bool = False) -> Finding:
    return Finding(Severity.ERROR, Source.CSV2SR, "", "", message, transient=transient)


def check_file(path: Path) -> list[Finding]:
    """Every own check of the file at ``path``; never raises (docs/reliability.md).

    Whatever goes wrong is a finding of this file alone: a file that is not a regular
    file (a FIFO would block), cannot be read, or makes pydicom or a check raise.
    """
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            return [_error("not a regular file (e.g. a FIFO or device): not read")]
        data = path.read_bytes()
    except OSError as exc:
        return [_error(f"cannot read file: {exc.strerror or exc}", transient=True)]
    try:
        return _check_bytes(data)
    except RecursionError:
        return [_error("the data set is nested too deeply to be checked (PS3.3 C.17.3 sets "
                       "no depth limit; see docs/reliability.md)")]
    except Exception as exc:  # a bug met on this file: its finding, not the batch's
        log.debug("%s: check failed", path, exc_info=True)
        return [_error(f"internal error while checking this file: {type(exc).__name__}: "
                       f"{exc}", transient=True)]


def _check_bytes(data: bytes) -> list[Finding]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds, findings = open_dataset(data)
        if ds is None:
            return findings
        try:
            findings.extend(check_dataset(ds))
        except RecursionError:
            raise
        except Exception as exc:  # pydicom raises many types on broken input
            findings.append(_error(f"the data set cannot be read to its end: "
                                   f"{type(exc).__name__}: {exc}"))
    return findings


def check_dataset(ds: Dataset) -> list[Finding]:
    """The checks that need a parsed data set (PS3.3 A.35, C.17, C.18; PS3.16 TID 1500)."""
    not_sr = sr_class_findings(ds)
    if not_sr:
        for _element in walk(ds):  # readable to its end? (raises if not)
            pass
        return not_sr
    findings = check_values(ds)  # walks everything first: an unreadable file fails here
    findings.extend(check_attributes(ds))
    findings.extend(check_codes(ds))
    if "ContentSequence" not in ds and "ValueType" not in ds:
        return findings
    root = build_tree(ds)
    findings.extend(check_content(root, text(ds, "SOPClassUID") or ""))
    findings.extend(check_references(ds, root))
    if is_tid1500(root):
        findings.extend(check_tid1500(root))
    return findings


def check_files(paths: list[str]) -> list[list[Finding]]:
    """Own checks of many files (the unit of work of a worker process); each file's
    findings are its own: :func:`check_file` never raises."""
    return [check_file(Path(p)) for p in paths]
