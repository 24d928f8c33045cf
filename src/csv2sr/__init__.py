"""csv2sr: tables of image annotations <-> DICOM TID 1500 Measurement Reports.

Public API (each name is imported on first use, so ``import csv2sr`` stays cheap)::

    csv2sr.convert(csv_path, outdir, ...)      -> ConversionResult   (csv2sr.conversion.batch)
    csv2sr.validate_files(paths, ...)          -> ValidationReport   (csv2sr.validate)
    csv2sr.export_table(paths, ...)            -> pandas.DataFrame   (csv2sr.export)
    csv2sr.write_table(paths, out, ...)        -> ExportResult       (csv2sr.export, streams)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    "convert": "csv2sr.conversion.batch",
    "ConversionResult": "csv2sr.conversion.batch",
    "validate_files": "csv2sr.validate",
    "export_table": "csv2sr.export",
    "write_table": "csv2sr.export",
}

__all__ = [
    "ConversionResult",
    "__version__",
    "convert",
    "export_table",
    "validate_files",
    "write_table",
]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'csv2sr' has no attribute {name!r}")
