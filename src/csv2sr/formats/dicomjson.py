"""The DICOM JSON Model (PS3.18 F.2) through pydicom, with decimal strings kept as written.

pydicom's ``to_json_dict`` turns DS and IS values into Python numbers, which loses how they
were written (``1.50`` becomes ``1.5``).  Here a DS or IS value is written as the JSON number
token it already is (``"Value": [71.56006194]``), or as a JSON string when its text is not
a valid JSON number (``.5``, ``+1``, which PS3.18 F.2.3 allows since CP-1861), and read back
as the same text.  The dataset only: the JSON Model has no File Meta Information, so
``to-dicom`` writes csv2sr's (the same as ``csv2sr convert``), which makes
SR -> JSON -> SR byte-identical for csv2sr's SRs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydicom import Dataset
from pydicom.dataelem import DataElement

from csv2sr.errors import SourceError
from csv2sr.formats.filemap import read_dicom_file

__all__ = ["dataset_to_json", "dicom_file_to_json", "json_file_to_dicom", "json_to_dataset"]

_JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?\Z")
_MARK = "\x00csv2sr-number:"
_MARKED = re.compile(r'"\\u0000csv2sr-number:([^"]*)"')
_NUMBER_VRS = ("DS", "IS")
_FLOAT_VRS = ("FD", "FL")
_INT_VRS = ("US", "SS", "UL", "SL", "UV", "SV")


class _Token(str):
    """A JSON number as its text (``json.loads(parse_float=..., parse_int=...)``)."""


def _number_texts(value: Any, vm: int) -> list[str | None]:
    items = list(value) if vm > 1 else [value]
    return [None if v is None or str(v) == "" else str(v).strip() for v in items]


def _to_dict(ds: Dataset) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for element in ds:
        key = f"{element.tag:08X}"
        if element.VR == "SQ":
            entry: dict[str, Any] = {"vr": "SQ"}
            if element.value:
                entry["Value"] = [_to_dict(item) for item in element.value]
            out[key] = entry
        elif element.VR in _NUMBER_VRS:
            entry = {"vr": element.VR}
            if not element.is_empty:
                entry["Value"] = [
                    None if text is None
                    else (_MARK + text if _JSON_NUMBER.match(text) else text)
                    for text in _number_texts(element.value, element.VM)
                ]
            out[key] = entry
        else:
            out[key] = element.to_json_dict(bulk_data_element_handler=None,
                                            bulk_data_threshold=1 << 30)
    return out


def dataset_to_json(ds: Dataset) -> str:
    """``ds`` (File Meta excluded) as DICOM JSON text, DS and IS values as written."""
    text = json.dumps(_to_dict(ds), indent=2, ensure_ascii=False)
    return _MARKED.sub(lambda match: match.group(1), text) + "\n"


def _typed(value: Any, vr: str) -> Any:
    if isinstance(value, list):
        return [_typed(v, vr) for v in value]
    if isinstance(value, dict):
        return {key: _typed_element(entry) if isinstance(entry, dict) and "vr" in entry
                else entry for key, entry in value.items()}
    if value is None or not isinstance(value, _Token):
        return value
    if vr in _NUMBER_VRS:
        return str(value)
    if vr in _FLOAT_VRS:
        return float(value)
    if vr in _INT_VRS:
        return int(value)
    return float(value) if any(c in value for c in ".eE") else int(value)


def _typed_element(entry: dict[str, Any]) -> dict[str, Any]:
    vr = str(entry.get("vr", ""))
    if "Value" not in entry:
        return entry
    if vr == "SQ":
        return {**entry, "Value": [_typed(item, vr) for item in entry["Value"]]}
    return {**entry, "Value": _typed(entry["Value"], vr)}


def json_to_dataset(text: str, source: str | Path) -> Dataset:
    """DICOM JSON text -> dataset; DS and IS numbers keep their text."""
    try:
        loaded = json.loads(text, parse_float=_Token, parse_int=_Token)
    except json.JSONDecodeError as exc:
        raise SourceError(source, f"line {exc.lineno}: not JSON: {exc.msg}") from None
    if not isinstance(loaded, dict):
        raise SourceError(source, "a DICOM JSON dataset is an object keyed by tag")
    typed = {key: _typed_element(entry) if isinstance(entry, dict) else entry
             for key, entry in loaded.items()}
    try:
        ds = Dataset.from_json(typed)
    except (KeyError, ValueError, TypeError, NotImplementedError) as exc:
        raise SourceError(source, f"not a DICOM JSON dataset (PS3.18 F.2): {exc}") from None
    _restore_numbers(ds, typed)
    return ds


def _restore_numbers(ds: Dataset, entries: dict[str, Any]) -> None:
    """pydicom's from_json rewrites DS text (``1.50`` -> ``1.5``): put the text back."""
    for key, entry in entries.items():
        if not isinstance(entry, dict) or "Value" not in entry:
            continue
        tag = int(key, 16)
        if entry.get("vr") in _NUMBER_VRS:
            values = [v for v in entry["Value"]]
            ds[tag] = DataElement(tag, entry["vr"], values[0] if len(values) == 1 else values)
        elif entry.get("vr") == "SQ":
            for item, item_entries in zip(ds[tag].value, entry["Value"], strict=True):
                _restore_numbers(item, item_entries)


def dicom_file_to_json(path: Path) -> bytes:
    """The DICOM JSON of the Part 10 file ``path``."""
    return dataset_to_json(read_dicom_file(path)).encode("utf-8")


def json_file_to_dicom(path: Path) -> bytes:
    """The Part 10 bytes (csv2sr's File Meta, Explicit VR Little Endian) of a JSON file."""
    from csv2sr.formats.srxml.dicom_file import part10_bytes  # noqa: PLC0415  (shared writer)

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(path, f"cannot read as UTF-8 text: {exc}") from None
    ds = json_to_dataset(text, path)
    for keyword in ("SOPClassUID", "SOPInstanceUID"):
        if not ds.get(keyword):
            raise SourceError(path, f"{keyword} is missing: a file needs it for its File Meta "
                              "Information (PS3.10 7.1)")
    return part10_bytes(ds)
