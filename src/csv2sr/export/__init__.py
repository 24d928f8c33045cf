"""SR files -> a table: one row per NUM measurement of a TID 1500 report.

The public API::

    export_table(paths, *, profile="generic", jobs=None, progress=None) -> pandas.DataFrame
    write_table(paths, out, *, format="csv"|"parquet"|"jsonl", profile=..., jobs=None,
                progress=None, on_problem=None) -> ExportResult

``paths`` are files or folders (walked recursively).  :mod:`csv2sr.export.reader` reads the
encodings (PS3.16 TID 1501 NUM INFERRED FROM SCOORD; TID 1410 group-level Image Region;
SNOMED CT or SNOMED-RT), :mod:`csv2sr.export.tables` makes the rows (``generic`` columns or
the ``ccc2017`` CSV), :mod:`csv2sr.export.writer` streams them to disk.
"""

from __future__ import annotations

from csv2sr.export.files import ExportInputError, export_inputs
from csv2sr.export.model import CodedValue, Measurement, Problem, ProblemKind
from csv2sr.export.reader import FileResult, read_dataset, read_file
from csv2sr.export.tables import GENERIC_COLUMNS, float32_text, profile_names
from csv2sr.export.writer import (
    FORMATS,
    ExportFormatError,
    ExportResult,
    export_table,
    format_for,
    iter_rows,
    write_table,
)

__all__ = [
    "FORMATS",
    "GENERIC_COLUMNS",
    "CodedValue",
    "ExportFormatError",
    "ExportInputError",
    "ExportResult",
    "FileResult",
    "Measurement",
    "Problem",
    "ProblemKind",
    "export_inputs",
    "export_table",
    "float32_text",
    "format_for",
    "iter_rows",
    "profile_names",
    "read_dataset",
    "read_file",
    "write_table",
]
