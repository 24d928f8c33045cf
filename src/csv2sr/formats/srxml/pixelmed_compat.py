"""What pixelmed does that the SR XML format itself does not say: measured, not copied.

Every rule here was found by running Debian's ``libpixelmed-java`` (build 20220618)
``XMLRepresentationOfStructuredReportObjectFactory`` on crafted inputs; ``docs/sr-xml.md``
lists the experiments.  pixelmed's code was never read.

* Text from XML is trimmed like Java's ``String.trim()`` (every code point up to U+0020 at
  either end), for every VR, in the header and in content item ``<value>`` elements; XML
  attributes (``cv``, ``csd``, ``cm``, ``datetime``, ...) are taken as written.
* The Specific Character Set is chosen from the characters used, whatever the header said
  (:func:`character_set_for`): none when all text is ASCII; ``ISO_IR 100``, ``126``,
  ``144`` or ``127`` when every other character lies in the Latin-1, Greek, Cyrillic or
  Arabic block; ``ISO_IR 192`` (UTF-8) for anything else or a mixture.
* The file: a 128-byte zero preamble, File Meta Information with pixelmed's implementation
  class UID and version name (PS3.10 7.1), Explicit VR Little Endian, and every sequence and
  item of undefined length with delimitation items (PS3.5 7.5).
* Numbers in ``<x>``/``<y>`` are read as Java ``Float.parseFloat`` does: the decimal rounded
  once, to the nearest float32.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterable, Iterator
from fractions import Fraction

from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian

__all__ = [
    "PIXELMED_IMPLEMENTATION_CLASS_UID",
    "PIXELMED_IMPLEMENTATION_VERSION_NAME",
    "character_set_for",
    "format_float32",
    "format_float64",
    "java_trim",
    "mark_undefined_lengths",
    "parse_decimal",
    "parse_float32",
    "pixelmed_file_meta",
]

PIXELMED_IMPLEMENTATION_CLASS_UID = "1.3.6.1.4.1.5962.99.2"
PIXELMED_IMPLEMENTATION_VERSION_NAME = "PIXELMEDJAVA001"

_JAVA_WHITESPACE = "".join(chr(c) for c in range(0x21))
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")
_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "+Infinity": math.inf,
            "-Infinity": -math.inf}


_SINGLE_BYTE_SETS = (
    (0x80, 0xFF, "ISO_IR 100", "latin_1"),
    (0x370, 0x3FF, "ISO_IR 126", "iso8859_7"),
    (0x400, 0x4FF, "ISO_IR 144", "iso8859_5"),
    (0x600, 0x6FF, "ISO_IR 127", "iso8859_6"),
)
"""Unicode block -> the single-byte character set pixelmed picks for it (PS3.3 C.12.1.1.2)."""


def character_set_for(texts: Iterable[str]) -> str | None:
    """The Specific Character Set pixelmed writes for these texts (None: leave it out)."""
    others = {char for text in texts for char in text if ord(char) > 0x7F}
    if not others:
        return None
    for low, high, term, codec in _SINGLE_BYTE_SETS:
        if all(low <= ord(char) <= high for char in others):
            try:
                "".join(others).encode(codec)
            except UnicodeEncodeError:
                break
            return term
    return "ISO_IR 192"


def java_trim(text: str) -> str:
    """Java's ``String.trim()``: strip code points U+0000..U+0020 at both ends."""
    return text.strip(_JAVA_WHITESPACE)


def parse_decimal(text: str) -> float | None:
    """A decimal number as Java's ``Double.parseDouble`` reads it, or None.

    Only plain decimals (``1``, ``-0.5``, ``.1E-09``) and ``NaN``/``Infinity`` are accepted;
    Java's hexadecimal and ``d``/``f``-suffixed forms are refused.
    """
    if text in _SPECIAL:
        return _SPECIAL[text]
    if not _DECIMAL.match(text):
        return None
    return float(text)


def parse_float32(text: str) -> float | None:
    """The float32 nearest to the decimal ``text`` (rounded once, as ``Float.parseFloat``)."""
    value = parse_decimal(text)
    if value is None or not math.isfinite(value):
        return value
    candidate = _to_f32(value)
    if math.isinf(candidate):
        return candidate
    exact = Fraction(text)
    best, best_error = candidate, abs(Fraction(candidate) - exact)
    for neighbour in (_next_f32(candidate, -1), _next_f32(candidate, 1)):
        if math.isinf(neighbour):
            continue
        error = abs(Fraction(neighbour) - exact)
        if error < best_error or (error == best_error and _even_f32(neighbour)):
            best, best_error = neighbour, error
    return best


def _to_f32(value: float) -> float:
    try:
        return float(struct.unpack("<f", struct.pack("<f", value))[0])
    except OverflowError:
        return math.copysign(math.inf, value)


def _next_f32(value: float, step: int) -> float:
    bits = struct.unpack("<i", struct.pack("<f", value))[0]
    if value == 0.0:
        bits = 1 if step > 0 else -2147483647
    elif (value > 0) == (step > 0):
        bits += 1
    else:
        bits -= 1
    return float(struct.unpack("<f", struct.pack("<i", bits))[0])


def _even_f32(value: float) -> bool:
    bits: int = struct.unpack("<I", struct.pack("<f", value))[0]
    return bits % 2 == 0


def format_float32(value: float) -> str:
    """A coordinate as pixelmed's toXML writes it in ``<x>``/``<y>``: 15 significant digits,
    no trailing zeros (``172.835357666016``, ``1``); enough to give back the same float32."""
    if math.isnan(value) or math.isinf(value):
        return _java_special(value)
    text = f"{value:.15g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        mantissa = mantissa.rstrip("0").rstrip(".") if "." in mantissa else mantissa
        return f"{mantissa}E{int(exponent)}"
    return text


def format_float64(value: float) -> str:
    """An FD/FL value without loss: the shortest decimal that reads back as the same double
    (``0.3333333333333333``; ``1`` for a whole number, as pixelmed writes it)."""
    if math.isnan(value) or math.isinf(value):
        return _java_special(value)
    if value.is_integer() and abs(value) < 1e16:
        return "-0" if math.copysign(1.0, value) < 0 and value == 0 else str(int(value))
    return repr(value).replace("e", "E")


def _java_special(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def pixelmed_file_meta(ds: Dataset) -> FileMetaDataset:
    """The File Meta Information pixelmed writes (PS3.10 7.1): no source AE title."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(PIXELMED_IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = PIXELMED_IMPLEMENTATION_VERSION_NAME
    return meta


def _datasets(ds: Dataset) -> Iterator[Dataset]:
    yield ds
    for element in ds:
        if element.VR == "SQ":
            for item in element.value:
                yield from _datasets(item)


def mark_undefined_lengths(ds: Dataset, undefined: bool = True) -> None:
    """Every sequence and item of undefined length, as pixelmed writes them (PS3.5 7.5.1);
    ``undefined=False`` puts defined lengths back."""
    for item in _datasets(ds):
        item.is_undefined_length_sequence_item = undefined
        for element in item:
            if element.VR == "SQ":
                element.is_undefined_length = undefined
