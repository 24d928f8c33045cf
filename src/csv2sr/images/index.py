"""The source images of an annotation table: an index of their headers.

A row carries only UIDs.  When the curator has the annotated CT series (a folder tree of
DICOM files, or a DICOMweb server), :class:`ImageIndex` reads the *headers* of every
instance once (never pixel data: ``stop_before_pixels`` and ``specific_tags``), keyed by
SOP Instance UID (PS3.3 C.12.1.1.1).  :mod:`csv2sr.images.checks` checks each row against
the image it names, :mod:`csv2sr.images.enrich` gives the encoder the evidence dataset,
and :mod:`csv2sr.images.cross` checks SR files against the index (``validate --images``).
"""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
import logging
import math
import os
import re
import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom import Dataset, dcmread
from pydicom.charset import default_encoding
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import PIXEL_KEYWORDS
from pydicom.errors import InvalidDicomError
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_data_element
from pydicom.tag import BaseTag, Tag
from pydicom.valuerep import AMBIGUOUS_VR, EXPLICIT_VR_LENGTH_32, STANDARD_VR

from csv2sr.dicom.reading import NotQuickError, read_elements
from csv2sr.errors import SourceError, held_interrupts, leave_interrupts
from csv2sr.images.dicomweb import Tries, all_studies
from csv2sr.pools import stopping

__all__ = [
    "CACHE_FOLDER",
    "CACHE_FORMAT",
    "GEOMETRY_KEYWORDS",
    "HEADER_KEYWORDS",
    "PARALLEL_THRESHOLD",
    "PATIENT_STUDY_KEYWORDS",
    "SLICE_BY",
    "SLICE_ORDERS",
    "Z_TOLERANCE_MM",
    "DuplicateInstance",
    "ImageIndex",
    "ImageIndexError",
    "ImageLookupError",
    "SkippedFile",
    "decode_header",
    "header_numbers",
    "header_uid",
    "header_values",
    "slim_header",
    "unpacked_headers",
    "z_position",
]

log = logging.getLogger(__name__)

PARALLEL_THRESHOLD = 1000
"""Folders with fewer files are read in this process: below that, starting workers costs
about what they save.  Two workers read 1,466 headers in 0.36 s where one took 0.51 s,
3,000 in 0.75 s where one took 1.03 s (benchmarks/results/images.txt)."""

_CHUNK = 256

PATIENT_STUDY_KEYWORDS: tuple[str, ...] = (
    # PS3.3 C.7.1.1 Patient Module
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex",
    "PatientIdentityRemoved", "DeidentificationMethod",
    # PS3.3 C.7.2.2 Patient Study Module
    "PatientAge",
    # PS3.3 C.7.2.1 General Study Module
    "StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID",
    "AccessionNumber", "StudyDescription",
)
"""What the SR copies from its image so that both agree (issue 6)."""

GEOMETRY_KEYWORDS: tuple[str, ...] = (
    # PS3.3 C.7.6.3 Image Pixel, C.7.6.2 Image Plane, C.7.4.1 Frame of Reference
    "Rows", "Columns", "PixelSpacing", "ImageOrientationPatient", "ImagePositionPatient",
    "SliceThickness", "FrameOfReferenceUID",
    # projection images (TID 1603): PS3.3 C.7.6.1 General Image, C.8.11.4 DX Detector
    "PatientOrientation", "ImagerPixelSpacing",
)

HEADER_KEYWORDS: tuple[str, ...] = (
    "SpecificCharacterSet", "SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID",
    "Modality", "SeriesNumber", "SeriesDescription", "InstanceNumber", "NumberOfFrames",
    *PATIENT_STUDY_KEYWORDS,
    *GEOMETRY_KEYWORDS,
)
"""Every attribute the index keeps of an image header (nothing else is read)."""


def _tag(keyword: str) -> BaseTag:
    tag = tag_for_keyword(keyword)
    if tag is None:  # pragma: no cover - the keywords above are all in the dictionary
        raise KeyError(keyword)
    return Tag(tag)


_TAGS: list[BaseTag] = [_tag(k) for k in HEADER_KEYWORDS]
_TAG_KEYS: frozenset[str] = frozenset(f"{int(t):08X}" for t in _TAGS)
_TAG_SET: frozenset[BaseTag] = frozenset(_TAGS)


CACHE_FOLDER = "cache"
"""``OUTDIR/cache/``: where :meth:`ImageIndex.from_folder` keeps an index between runs."""

CACHE_FORMAT = 1
"""The layout of a cached index; a file of another layout is ignored (and replaced)."""

SLICE_ORDERS: tuple[str, ...] = ("instance_number", "z")
"""How the instances of a series are ordered for a slice index: by Instance Number
(PS3.3 C.7.6.1.1), or by the position along the slice normal (z, PS3.3 C.7.6.2.1.1)."""

SLICE_BY: tuple[str, ...] = ("index", "instance_number", "z")
"""What a slice value is: an index in the stated order, an Instance Number, or a z in mm."""

Z_TOLERANCE_MM = 0.01
"""Default tolerance of a z lookup, and of "even spacing" along the slice normal."""


class ImageLookupError(ValueError):
    """A lookup in the index that gives no single answer; ``str()`` names the rule and the
    candidates (what a row problem says)."""


class ImageIndexError(SourceError):
    """The image source as a whole cannot be used (no such folder, server unreachable)."""


@dataclass(frozen=True)
class SkippedFile:
    """A file (or DICOMweb resource) of the image source that gave no usable header."""

    source: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


@dataclass(frozen=True)
class DuplicateInstance:
    """Two files holding the same SOP Instance UID (PS3.3 C.12.1.1.1 requires uniqueness)."""

    sop_instance_uid: str
    kept: str
    other: str
    same_header: bool
    """True when both headers agree on every indexed attribute (a plain copy)."""


def slim_header(ds: Dataset) -> Dataset:
    """A new dataset holding only :data:`HEADER_KEYWORDS` of ``ds`` (small, picklable),
    or ``ds`` itself when it is a plain dataset holding nothing else (one
    :func:`_read_one` made).

    Elements are copied as read (``get_item``): a value is decoded only when used.
    """
    if type(ds) is Dataset and ds._dict.keys() <= _TAG_SET:
        return ds
    # one dictionary, in _TAGS order: Dataset.__setitem__ adds nothing for these elements
    # (public, not sequences, not pixel data; see _unpack) and cost a third of the scan
    return Dataset({tag: element for tag in _TAGS
                    if (element := ds._dict.get(tag)) is not None})


def header_values(ds: Dataset) -> dict[str, Any]:
    """Indexed attributes as plain Python values, for comparing headers of any origin.

    Numbers (DS, IS, US) become floats, multi-values tuples, names and texts strings,
    so a header read from a file equals the same header received as DICOM JSON.
    """
    values: dict[str, Any] = {}
    for keyword in HEADER_KEYWORDS:
        if keyword == "SpecificCharacterSet" or keyword not in ds:
            continue
        element = ds[keyword]
        values[keyword] = _plain(element.value, element.VR)
    return values


def _plain(value: Any, vr: str) -> Any:
    if value is None or value == "":
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return tuple(_plain(v, vr) for v in value)
    if vr in {"DS", "IS", "US", "SS", "UL", "SL", "FL", "FD"}:
        try:
            return float(value)
        except (ValueError, TypeError):  # a malformed number stays as written
            return str(value)
    return str(value)


_Packed = tuple[Any, ...]


def _pack(ds: Dataset) -> list[_Packed]:
    """A header as plain tuples: pickles ten times faster than the Dataset itself.

    Undecoded elements keep their bytes (``RawDataElement`` fields); decoded ones their
    tag, VR and value.
    """
    packed: list[_Packed] = []
    for tag in ds.keys():  # noqa: SIM118  (iterating a Dataset decodes its elements)
        element = ds.get_item(tag)
        if isinstance(element, RawDataElement):
            packed.append((
                int(element.tag), element.VR, element.length, element.value,
                element.value_tell, element.is_implicit_VR, element.is_little_endian,
            ))
        else:
            packed.append((int(element.tag), element.VR, element.value))
    return packed


def _unpack(packed: list[_Packed]) -> Dataset:
    """The inverse of :func:`_pack`.

    The elements are given to the new dataset as one dictionary, in the packed order:
    ``Dataset.__setitem__`` does nothing more for a public, non-sequence, non-pixel
    element, and cost most of the time (a worker unpacks every header it reads); any
    other element is set as before.
    """
    elements: dict[BaseTag, DataElement | RawDataElement] = {}
    for item in packed:
        number = item[0]
        # a private tag (odd group: bit 16), pixel data or a sequence: element by element
        # (tested on the number: BaseTag's is_private and == are Python code, and were a
        # third of reading a cached index)
        if number & 0x10000 or number in _PIXEL_NUMBERS or item[1] == "SQ":
            return _unpack_slowly(packed)
        tag = BaseTag(number)  # packed from a tag: a valid one
        if len(item) == 7:
            _, vr, length, value, tell, implicit, little = item
            elements[tag] = RawDataElement(tag, vr, length, value, tell, implicit, little)
        else:
            elements[tag] = DataElement(tag, item[1], item[2])
    return Dataset(elements)


_PIXEL_NUMBERS = frozenset(int(Tag(t)) for t in PIXEL_KEYWORDS)
"""Pixel Data and its kin: ``Dataset.__setitem__`` resets the pixel cache for them."""


def _unpack_slowly(packed: list[_Packed]) -> Dataset:
    """:func:`_unpack` element by element, through ``Dataset.__setitem__``."""
    ds = Dataset()
    for item in packed:
        if len(item) == 7:
            tag, vr, length, value, tell, implicit, little = item
            ds[tag] = RawDataElement(Tag(tag), vr, length, value, tell, implicit, little)
        else:
            tag, vr, value = item
            ds.add_new(tag, vr, value)
    return ds


class _Unpacking(Mapping[str, Dataset]):
    """The headers of an unpickled index (a conversion worker's), each unpacked
    (:func:`_unpack`) when first asked for: a worker reads only the images of its rows,
    and unpacking all 1,466 headers of the real CSV cost each worker 0.5 s before its
    first row (benchmarks/bench_convert_images.py)."""

    def __init__(self, packed: dict[str, list[_Packed]]) -> None:
        self._packed = packed
        self._unpacked: dict[str, Dataset] = {}

    def __getitem__(self, uid: str) -> Dataset:
        found = self._unpacked.get(uid)
        if found is None:
            found = self._unpacked[uid] = _unpack(self._packed[uid])
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._packed)

    def __len__(self) -> int:
        return len(self._packed)

    def __contains__(self, uid: object) -> bool:
        return uid in self._packed

    def packed_one(self, uid: str) -> list[_Packed]:
        """One header packed (see :meth:`packed`)."""
        unpacked = self._unpacked.get(uid)
        return _pack(unpacked) if unpacked is not None else self._packed[uid]

    def add(self, packed: Mapping[str, list[_Packed]]) -> None:
        """Headers received packed; one already here is kept (it may be decoded)."""
        for uid, header in packed.items():
            self._packed.setdefault(uid, header)

    def packed(self) -> dict[str, list[_Packed]]:
        """Every header packed: as received, or packed again when it was unpacked (its
        elements may have been decoded since)."""
        return {uid: _pack(self._unpacked[uid]) if uid in self._unpacked else packed
                for uid, packed in self._packed.items()}


def unpacked_headers(packed: Mapping[str, list[_Packed]] | None = None
                     ) -> _Unpacking:
    """Headers by SOP Instance UID from :meth:`ImageIndex.packed_headers`, each unpacked
    when first asked for; ``add`` takes more."""
    return _Unpacking(dict(packed or {}))


# --------------------------------------------------------------------------- reading files


def _read_one(path: str) -> tuple[str, Dataset | None, str]:
    """(path, slim header or None, reason when None): never raises for one bad file."""
    try:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=_TAGS)
        header = slim_header(ds)
    except InvalidDicomError:
        return path, None, "not a DICOM file (no preamble and 'DICM' prefix)"
    except Exception as exc:  # one unreadable file must not stop the others
        return path, None, f"not readable as DICOM ({type(exc).__name__}: {exc})"
    if not header_uid(header, _SOP_INSTANCE):
        return path, None, "no SOP Instance UID (not an image instance)"
    return path, header, ""


def _read_chunk(paths: list[str]) -> list[tuple[str, list[_Packed] | None, str]]:
    """Worker side: headers packed as tuples, so sending them back costs little."""
    return [
        (path, None if header is None else _pack(header), reason)
        for path, header, reason in map(_read_one, paths)
    ]


def _walk_files(root: Path) -> list[str]:
    """Every regular file under ``root``, sorted (so duplicates resolve the same way)."""
    found: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        found.extend(os.path.join(folder, name) for name in sorted(files))
    return found


def _default_jobs(count: int) -> int:
    if count < PARALLEL_THRESHOLD:
        return 1
    return max(1, min(os.cpu_count() or 1, 4))


def _read_all(paths: list[str], jobs: int) -> Iterator[tuple[str, Dataset | None, str]]:
    if jobs <= 1 or len(paths) < 2 * _CHUNK:
        yield from (_read_one(p) for p in paths)
        return
    chunks = [paths[i : i + _CHUNK] for i in range(0, len(paths), _CHUNK)]
    with stopping(ProcessPoolExecutor(max_workers=jobs, initializer=leave_interrupts)) as pool:
        with held_interrupts():  # map submits every chunk, starting the workers
            results = pool.map(_read_chunk, chunks)
        for result in results:
            for path, packed, reason in result:
                yield path, None if packed is None else _unpack(packed), reason


# --------------------------------------------------------------------------- the index


class ImageIndex:
    """Headers of source images keyed by SOP Instance UID (PS3.3 C.12.1.1.1).

    Holds small datasets only (:data:`HEADER_KEYWORDS`), so it pickles cheaply to worker
    processes.  Build it with :meth:`from_folder` or :meth:`from_dicomweb`.
    """

    def __init__(
        self,
        headers: Mapping[str, Dataset],
        *,
        sources: Mapping[str, str] | None = None,
        origin: str = "",
        skipped: Sequence[SkippedFile] = (),
        duplicates: Sequence[DuplicateInstance] = (),
        from_files: bool = False,
    ) -> None:
        self._headers: Mapping[str, Dataset] = dict(headers)
        self._sources = dict(sources or {})
        self.origin = origin
        """The folder or URL the headers came from (for messages)."""
        self.skipped = tuple(skipped)
        self.duplicates = tuple(duplicates)
        self.from_files = from_files
        """True when every source is a local file path (``dcentvfy`` can read them)."""
        self.cached = False
        """True when :meth:`from_folder` read the index from its cache."""

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def from_datasets(
        cls, datasets: Iterable[tuple[str, Dataset]], *, origin: str = "", from_files: bool = False
    ) -> ImageIndex:
        """Index ``(source, dataset)`` pairs; the first of two equal UIDs is kept."""
        headers: dict[str, Dataset] = {}
        sources: dict[str, str] = {}
        duplicates: list[DuplicateInstance] = []
        for source, ds in datasets:
            header = slim_header(ds)
            uid = header_uid(header, _SOP_INSTANCE)
            if uid in headers:
                same = header_values(headers[uid]) == header_values(header)
                duplicates.append(DuplicateInstance(uid, sources[uid], source, same))
                log.warning(
                    "%s: SOP Instance UID %s already in %s%s", source, uid, sources[uid],
                    "" if same else " (with different attributes)",
                )
                continue
            headers[uid] = header
            sources[uid] = source
        return cls(
            headers, sources=sources, origin=origin, duplicates=duplicates,
            from_files=from_files,
        )

    @classmethod
    def from_folder(
        cls, path: Path, *, jobs: int | None = None, cache_in: Path | None = None,
    ) -> ImageIndex:
        """Read the header of every DICOM file under ``path`` (recursively), once.

        Files that are not DICOM, or have no SOP Instance UID (a DICOMDIR), are skipped
        and listed in :attr:`skipped`.  ``jobs`` worker processes read the files (default:
        up to 4 when there are at least :data:`PARALLEL_THRESHOLD` files, else 1).
        Files are visited in sorted path order, so the first of two files with the same
        SOP Instance UID is always the same one.

        ``cache_in`` (an output folder): the index is kept in
        ``cache_in/cache/images-<folder digest>.json`` (written atomically, never outside
        ``cache_in``) under a key made of every file's path, size and modification time,
        the indexed attributes and csv2sr's code (:func:`csv2sr.cache.code_digest`); a run
        whose key matches reads it instead of the headers (:attr:`cached` is then True).
        A cache of another key, or one that cannot be read, is ignored and replaced.
        """
        root = Path(path)
        if not root.is_dir():
            raise ImageIndexError(str(root), "no such folder")
        paths = _walk_files(root)
        if cache_in is not None:
            key = _folder_key(root, paths)
            where = Path(cache_in) / CACHE_FOLDER / _cache_name(root)
            found = _read_cache(where, key)
            if found is not None:
                log.info("%s: %d instances from the cache %s", root, len(found), where)
                return found
            index = cls._scan(root, paths, jobs)
            _write_cache(index, where, key, Path(cache_in))
            return index
        return cls._scan(root, paths, jobs)

    @classmethod
    def _scan(cls, root: Path, paths: list[str], jobs: int | None) -> ImageIndex:
        """Read the header of every file of ``paths`` (the work of :meth:`from_folder`)."""
        workers = _default_jobs(len(paths)) if jobs is None else max(1, jobs)
        log.info("%s: reading the headers of %d files (%d jobs)", root, len(paths), workers)
        skipped: list[SkippedFile] = []
        good: list[tuple[str, Dataset]] = []
        for file, header, reason in _read_all(paths, workers):
            if header is None:
                log.debug("%s: skipped: %s", file, reason)
                skipped.append(SkippedFile(file, reason))
            else:
                good.append((file, header))
        index = cls.from_datasets(good, origin=str(root), from_files=True)
        index.skipped = tuple(skipped)
        log.info(
            "%s: %d instances indexed, %d files skipped, %d duplicate UIDs",
            root, len(index), len(skipped), len(index.duplicates),
        )
        return index

    @classmethod
    def from_dicomweb(
        cls,
        url: str,
        *,
        study_uids: Iterable[str] | None = None,
        attempts: int = 3,
        timeout: float = 30.0,
    ) -> ImageIndex:
        """Fetch instance metadata (PS3.18 10.4 WADO-RS "metadata") study by study.

        Without ``study_uids`` every study the server lists (QIDO-RS, PS3.18 10.6) is read;
        give the studies of the table to read only those.  A study the server does not
        have is listed in :attr:`skipped`.  ``timeout`` is per request, in seconds; a
        request that gets no answer in time, a refused or dropped connection, and an
        HTTP 408, 429, 503 or 504 are tried ``attempts`` times in all (0.25 s, then
        0.5 s, 1 s, ... apart), then :class:`ImageIndexError` stops the index.
        """
        try:  # optional dependency (extra "dicomweb"); requests comes with it
            import requests  # noqa: PLC0415
            from dicomweb_client.api import DICOMwebClient  # noqa: PLC0415
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImageIndexError(
                url, "pip install dicomweb-client to read from DICOMweb"
            ) from None

        base = url.rstrip("/")
        client = DICOMwebClient(url=base, timeout=timeout)
        client.set_http_retry_params(
            retry=attempts > 1, max_attempts=max(1, attempts), wait_exponential_multiplier=250
        )
        tries = Tries(base, max(1, attempts), timeout)
        try:
            studies = (sorted(set(study_uids)) if study_uids is not None
                       else tries.call("listing the studies", all_studies, client))
        except requests.RequestException as exc:
            raise ImageIndexError(base, f"cannot list the studies ({tries.why(exc)})") from None
        skipped: list[SkippedFile] = []
        good: list[tuple[str, Dataset]] = []
        for study in studies:
            try:
                items = tries.call(f"study {study}", client.retrieve_study_metadata, study)
            except requests.HTTPError as exc:
                log.warning("%s: study %s: %s", base, study, exc)
                skipped.append(SkippedFile(f"{base}/studies/{study}", f"not retrieved ({exc})"))
                continue
            except requests.RequestException as exc:
                raise ImageIndexError(base, f"study {study}: {tries.why(exc)}") from None
            for item in items:
                ds = Dataset.from_json({k: v for k, v in item.items() if k in _TAG_KEYS})
                if not ds.get("SOPInstanceUID"):
                    continue
                where = (
                    f"{base}/studies/{study}/series/{ds.get('SeriesInstanceUID', '')}"
                    f"/instances/{ds.SOPInstanceUID}"
                )
                good.append((where, ds))
        index = cls.from_datasets(good, origin=base)
        index.skipped = tuple(skipped)
        log.info("%s: %d instances indexed from %d studies", base, len(index), len(studies))
        return index

    # -- pickling (worker processes) -------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_series_cache", None)
        headers = self._headers
        state["_headers"] = (headers.packed() if isinstance(headers, _Unpacking)
                             else {uid: _pack(ds) for uid, ds in headers.items()})
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        state["_headers"] = _Unpacking(state["_headers"])
        self.__dict__.update(state)

    def packed_headers(self, sop_instance_uids: Iterable[str]) -> dict[str, list[_Packed]]:
        """The headers of these instances (those indexed), packed as plain tuples for
        another process (:func:`unpacked_headers`): what a conversion worker needs for one
        chunk of documents, rather than the whole index."""
        headers = self._headers
        found: dict[str, list[_Packed]] = {}
        for uid in sop_instance_uids:
            if uid in found or uid not in headers:
                continue
            found[uid] = (headers.packed_one(uid) if isinstance(headers, _Unpacking)
                          else _pack(headers[uid]))
        return found

    # -- access ---------------------------------------------------------------------------

    def get(self, sop_instance_uid: str) -> Dataset | None:
        """The header of the instance, or None."""
        return self._headers.get(sop_instance_uid)

    def source(self, sop_instance_uid: str) -> str | None:
        """The file path (or WADO-RS URL) the header came from."""
        return self._sources.get(sop_instance_uid)

    def files(self, sop_instance_uids: Iterable[str] | None = None) -> list[Path]:
        """Local files of the given instances (all when None); empty for DICOMweb."""
        if not self.from_files:
            return []
        uids = self._headers.keys() if sop_instance_uids is None else sop_instance_uids
        return [Path(self._sources[u]) for u in uids if u in self._sources]

    def subset(self, sop_instance_uids: Iterable[str]) -> ImageIndex:
        """The same index restricted to the given instances (to ship less to workers)."""
        keep = {u for u in sop_instance_uids if u in self._headers}
        return ImageIndex(
            {u: self._headers[u] for u in keep},
            sources={u: self._sources[u] for u in keep if u in self._sources},
            origin=self.origin, skipped=self.skipped, duplicates=self.duplicates,
            from_files=self.from_files,
        )

    def uids(self) -> list[str]:
        """Every indexed SOP Instance UID, sorted."""
        return sorted(self._headers)

    # -- series, slices and frames (issue 11) ---------------------------------------------

    def _by_series(self) -> dict[str, list[str]]:
        found = self.__dict__.get("_series_cache")
        if found is None:
            found = {}
            for uid in sorted(self._headers):
                series = str(self._headers[uid].get("SeriesInstanceUID", ""))
                found.setdefault(series, []).append(uid)
            self.__dict__["_series_cache"] = found
        return found

    def series_uids(self) -> list[str]:
        """Every Series Instance UID of the index, sorted."""
        return sorted(s for s in self._by_series() if s)

    def series_instances(self, series_uid: str) -> list[str]:
        """The SOP Instance UIDs of a series (sorted by UID; :meth:`ordered` for slices)."""
        return list(self._by_series().get(series_uid, ()))

    def series_of_patient(self, patient_id: str, study_uid: str = "") -> list[str]:
        """The series of a patient (PS3.3 C.7.1.1 Patient ID), of one study when given."""
        found = []
        for series, uids in self._by_series().items():
            header = self._headers[uids[0]]
            if str(header.get("PatientID", "")) != patient_id:
                continue
            if study_uid and str(header.get("StudyInstanceUID", "")) != study_uid:
                continue
            if series:
                found.append(series)
        return sorted(found)

    def describe_series(self, series_uid: str) -> str:
        """``UID (MR, 'T2 axial', 24 instances)`` for messages."""
        uids = self._by_series().get(series_uid, [])
        if not uids:
            return f"{series_uid} (not indexed)"
        header = self._headers[uids[0]]
        return (f"{series_uid} ({header.get('Modality', '?')}, "
                f"{str(header.get('SeriesDescription', ''))!r}, {len(uids)} instances)")

    def select_series(
        self, patient_id: str, *, modality: str = "", description: str = "",
        study_uid: str = "",
    ) -> str:
        """The one series of ``patient_id`` whose Modality is ``modality`` and whose Series
        Description matches the regular expression ``description`` (``re.search``; empty:
        any).  Raises :class:`ImageLookupError` naming the rule and the candidates when none
        or several match."""
        rule = " and ".join(
            part for part in (
                f"Modality = {modality}" if modality else "",
                f"Series Description matches {description!r}" if description else "",
            ) if part
        ) or "any series"
        pattern = re.compile(description) if description else None
        candidates = self.series_of_patient(patient_id, study_uid)
        if not candidates:
            where = f" in study {study_uid}" if study_uid else ""
            raise ImageLookupError(f"no series of patient {patient_id!r}{where} in "
                                f"{self.origin or 'the image index'}")
        matched = []
        for series in candidates:
            header = self._headers[self._by_series()[series][0]]
            if modality and str(header.get("Modality", "")) != modality:
                continue
            if pattern is not None and not pattern.search(str(header.get("SeriesDescription",
                                                                         ""))):
                continue
            matched.append(series)
        if len(matched) == 1:
            return matched[0]
        shown = matched if matched else candidates
        listed = "; ".join(self.describe_series(s) for s in shown)
        if matched:
            raise ImageLookupError(f"{len(matched)} series of the patient match the rule "
                                f"({rule}): {listed}")
        raise ImageLookupError(f"no series of the patient matches the rule ({rule}); "
                            f"the patient has: {listed}")

    def _key(self, uid: str, order: str) -> float | None:
        header = self._headers[uid]
        if order == "z":
            return z_position(header)
        return _number(header.get("InstanceNumber"))

    def ordered(self, series_uid: str, order: str) -> list[tuple[str, float]]:
        """The instances of a series as (SOP Instance UID, key), sorted by ``order``
        (:data:`SLICE_ORDERS`): Instance Number, or z along the slice normal.  Ties keep
        UID order.  Raises :class:`ImageLookupError` when the series is not indexed or an
        instance lacks the key (no Instance Number; no Image Position/Orientation)."""
        uids = self._by_series().get(series_uid)
        if not uids:
            raise ImageLookupError(f"series {series_uid} is not in "
                                f"{self.origin or 'the image index'}")
        keyed = []
        for uid in uids:
            key = self._key(uid, order)
            if key is None:
                what = ("Instance Number" if order == "instance_number"
                        else "usable Image Position and Orientation (Patient)")
                raise ImageLookupError(f"the image {self.source(uid) or uid} of series "
                                    f"{series_uid} has no {what}, which order = {order!r} "
                                    "needs")
            keyed.append((uid, key))
        return sorted(keyed, key=lambda pair: pair[1])

    def gaps(self, series_uid: str, order: str,
             tolerance: float = Z_TOLERANCE_MM) -> str:
        """Why a slice index in ``order`` is unreliable for the series ("" when it is not):
        missing or repeated Instance Numbers, or repeated or uneven z positions."""
        keyed = self.ordered(series_uid, order)
        keys = [k for _, k in keyed]
        if order == "instance_number":
            repeated = sorted({k for k in keys if keys.count(k) > 1})
            if repeated:
                return f"repeated Instance Numbers {', '.join(f'{k:g}' for k in repeated)}"
            missing = [k for k in range(int(keys[0]), int(keys[-1]) + 1) if float(k) not in keys]
            if missing:
                shown = ", ".join(str(k) for k in missing[:10])
                return f"missing Instance Numbers {shown}{' ...' if len(missing) > 10 else ''}"
            return ""
        steps = [b - a for a, b in itertools.pairwise(keys)]
        if any(step <= tolerance for step in steps):
            return "two instances at the same z"
        if steps and max(steps) - min(steps) > tolerance:
            return (f"uneven spacing along the slice normal (steps from {min(steps):g} to "
                    f"{max(steps):g} mm)")
        return ""

    def find_slice(
        self, series_uid: str, value: float, *, by: str, order: str = "instance_number",
        base: int = 0, tolerance: float = Z_TOLERANCE_MM,
    ) -> str:
        """The SOP Instance UID of one slice of a series.

        ``by`` (:data:`SLICE_BY`): ``index`` counts from ``base`` (0 or 1) in ``order``
        (:data:`SLICE_ORDERS`), and needs a series without gaps (:meth:`gaps`);
        ``instance_number`` is the Instance Number (PS3.3 C.7.6.1.1); ``z`` the position
        along the slice normal in mm, within ``tolerance``.  Raises
        :class:`ImageLookupError` naming the rule and the candidates.
        """
        if by == "index":
            keyed = self.ordered(series_uid, order)
            gap = self.gaps(series_uid, order, tolerance)
            if gap:
                raise ImageLookupError(f"series {series_uid} has {gap}: a slice index in "
                                    f"{order} order would name the wrong image")
            position = int(value) - base
            if value != int(value) or not 0 <= position < len(keyed):
                raise ImageLookupError(
                    f"slice {value:g} is out of range: series {series_uid} has "
                    f"{len(keyed)} instances ({base}-based indices {base} to "
                    f"{len(keyed) - 1 + base} in {order} order)")
            return keyed[position][0]
        keyed = self.ordered(series_uid, "z" if by == "z" else "instance_number")
        if by == "z":
            found = [uid for uid, key in keyed if abs(key - value) <= tolerance]
        else:
            found = [uid for uid, key in keyed if key == value]
        if len(found) == 1:
            return found[0]
        what = "z" if by == "z" else "Instance Number"
        if found:
            raise ImageLookupError(f"{len(found)} instances of series {series_uid} have "
                                f"{what} {value:g}: {', '.join(found)}")
        nearest = min(keyed, key=lambda pair: abs(pair[1] - value))
        span = f"{keyed[0][1]:g} to {keyed[-1][1]:g}"
        within = f" within {tolerance:g} mm" if by == "z" else ""
        raise ImageLookupError(f"no instance of series {series_uid} has {what} {value:g}"
                            f"{within} (they run from {span}; nearest {nearest[1]:g})")

    def slice_value(self, sop_instance_uid: str, *, by: str, order: str = "instance_number",
                    base: int = 0) -> float:
        """The inverse of :meth:`find_slice`: the value that names this instance of its
        series (by ``index``: its position in ``order`` counted from ``base``; by
        ``instance_number``: its Instance Number, PS3.3 C.7.6.1.1; by ``z``: its position
        along the slice normal, C.7.6.2.1.1).  Raises :class:`ImageLookupError` when the
        instance is not indexed or lacks the key."""
        header = self._headers.get(sop_instance_uid)
        if header is None:
            raise ImageLookupError(f"the image {sop_instance_uid} is not in "
                                   f"{self.origin or 'the image index'}")
        if by == "index":
            series = str(header.get("SeriesInstanceUID", ""))
            keyed = [uid for uid, _ in self.ordered(series, order)]
            return float(keyed.index(sop_instance_uid) + base)
        key = self._key(sop_instance_uid, "z" if by == "z" else "instance_number")
        if key is None:
            what = "z" if by == "z" else "Instance Number"
            where = self.source(sop_instance_uid) or sop_instance_uid
            raise ImageLookupError(f"the image {where} has no {what}")
        return key

    def number_of_frames(self, sop_instance_uid: str) -> int:
        """Number of Frames (PS3.3 C.7.6.6): 1 for a single-frame image."""
        header = self._headers.get(sop_instance_uid)
        value = _number(header.get("NumberOfFrames")) if header is not None else None
        return int(value) if value else 1

    def __len__(self) -> int:
        return len(self._headers)

    def __contains__(self, sop_instance_uid: object) -> bool:
        return sop_instance_uid in self._headers

    def __iter__(self) -> Iterator[str]:
        return iter(self.uids())

    def __repr__(self) -> str:
        return f"ImageIndex({self.origin!r}, {len(self)} instances)"


# --------------------------------------------------------------------------- the cache


def _cache_name(root: Path) -> str:
    """One cache file per image folder (by its absolute path)."""
    name = os.fspath(root.resolve()).encode("utf-8", "surrogateescape")
    return f"images-{hashlib.sha256(name).hexdigest()[:24]}.json"


def _folder_key(root: Path, paths: list[str]) -> str:
    """SHA-256 over the cache format, the indexed attributes, csv2sr's code and each
    file's relative path, size and modification time (ns): any change re-reads."""
    from csv2sr.cache import code_digest  # noqa: PLC0415

    digest = hashlib.sha256(json.dumps(
        [CACHE_FORMAT, HEADER_KEYWORDS, code_digest(), os.fspath(root.resolve())]
    ).encode("utf-8"))
    prefix = os.path.join(os.fspath(root), "")
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            size, mtime = -1, -1
        else:
            size, mtime = info.st_size, info.st_mtime_ns
        # a path _walk_files made starts with the folder's: cut, not os.path.relpath
        # (which made each path absolute twice, a third of checking the key)
        relative = (path[len(prefix):] if path.startswith(prefix)
                    else os.path.relpath(path, root)).encode("utf-8", "surrogateescape")
        digest.update(relative + f"\0{size}\0{mtime}\n".encode())
    return digest.hexdigest()


def _header_bytes(ds: Dataset) -> str:
    """A header as Explicit VR Little Endian bytes (base64, PS3.5 7.1.2): the values stay
    the bytes the file held, so a cached run makes the same SRs as the first.

    An element still as read from an explicit VR little endian file is written as it was
    read (its value bytes, never decoded); any other is decoded and encoded again in the
    header's Specific Character Set, as ``write_dataset`` does.  ``write_dataset`` itself
    decoded every element of a header read from a file (a new dataset has no original
    encoding), which made the cache cost more than reading the files
    (benchmarks/bench_convert_images.py).  None of :data:`HEADER_KEYWORDS` has an
    ambiguous VR (PS3.6 "US or SS"), which ``write_dataset`` would correct first.
    """
    buffer = DicomBytesIO()
    buffer.is_little_endian = True
    buffer.is_implicit_VR = False
    encoding = ds.get(_CHARACTER_SET, None)
    encoding = default_encoding if encoding is None else encoding.value
    elements = ds._dict
    # sorted as ints: BaseTag's own comparison is Python code, a third of the cost
    for tag in sorted(elements, key=int):
        element = elements[tag]
        if (type(element) is RawDataElement and not element.is_implicit_VR
                and element.is_little_endian and element.VR in _SHORT_VRS):
            value = element.value or b""  # tag, VR, 16-bit length, value (PS3.5 7.1.2)
            buffer.write(_ELEMENT_HEAD.pack(tag >> 16, tag & 0xFFFF, element.VR.encode("ascii"),
                                            len(value)) + value)
            continue
        if isinstance(element, RawDataElement) and (
                element.is_implicit_VR or not element.is_little_endian
                or element.VR is None or len(element.VR) != 2):
            element = ds[tag]  # decoded: its VR looked up, its numbers made little endian
        write_data_element(buffer, element, encoding)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


_ELEMENT_HEAD = struct.Struct("<HH2sH")
"""Tag group, element, VR and 16-bit length of an explicit VR little endian element."""
_SHORT_VRS = frozenset(str(vr) for vr in STANDARD_VR - EXPLICIT_VR_LENGTH_32)
"""The VRs whose explicit length is 16 bits (PS3.5 Table 7.1-2)."""


def _header_of(text: str) -> Dataset:
    """The inverse of :func:`_header_bytes`: its elements undecoded, as pydicom's
    ``read_dataset`` gives them, parsed by :func:`csv2sr.dicom.reading.read_elements`
    (``read_dataset`` itself cost most of reading a cached index, 0.15 ms a header); a
    header that reader does not take is read by ``read_dataset``."""
    data = base64.b64decode(text)
    try:
        elements = read_elements(data)
    except NotQuickError:
        return read_dataset(io.BytesIO(data), is_implicit_VR=False, is_little_endian=True)
    return _unpack([(tag, vr, len(raw), raw, 0, False, True)
                    for tag, (vr, raw) in elements.items()])


def _read_cache(where: Path, key: str) -> ImageIndex | None:
    from csv2sr.cache import read_regular  # noqa: PLC0415

    data = read_regular(where)
    if data is None:
        return None
    try:
        raw = json.loads(data)
        if raw.get("format") != CACHE_FORMAT or raw.get("key") != key:
            log.info("%s: made for other files or another csv2sr: read again", where)
            return None
        headers = {uid: _header_of(text) for uid, text in raw["headers"].items()}
        index = ImageIndex(
            headers, sources=raw["sources"], origin=raw["origin"],
            skipped=[SkippedFile(*item) for item in raw["skipped"]],
            duplicates=[DuplicateInstance(*item) for item in raw["duplicates"]],
            from_files=True,
        )
    except Exception as exc:  # a damaged cache is never an error: it is read again
        log.warning("%s: unusable cache (%s: %s): read again", where, type(exc).__name__, exc)
        return None
    index.cached = True
    return index


def _write_cache(index: ImageIndex, where: Path, key: str, root: Path) -> None:
    from csv2sr.atomic import OutputError, write_atomic  # noqa: PLC0415

    payload = {
        "format": CACHE_FORMAT, "key": key, "origin": index.origin,
        "headers": {uid: _header_bytes(index._headers[uid]) for uid in index.uids()},
        "sources": {uid: index._sources[uid] for uid in index.uids()},
        "skipped": [[s.source, s.reason] for s in index.skipped],
        "duplicates": [[d.sop_instance_uid, d.kept, d.other, d.same_header]
                       for d in index.duplicates],
    }
    try:
        write_atomic(where, json.dumps(payload, separators=(",", ":")), root=root,
                     durable=False)
    except OutputError as exc:  # the index is made; only the next run is slower
        log.warning("the image index cache was not written: %s", exc)


_CHARACTER_SET = BaseTag(0x00080005)
_SOP_INSTANCE = BaseTag(0x00080018)


def decode_header(header: Dataset) -> Dataset:
    """``header`` with every element decoded, in place, as ``Dataset.__getitem__`` decodes
    one (``convert_raw_data_element``; the same values), but with the character set
    (Specific Character Set, PS3.3 C.12.1.1.2) looked up once for the header instead of
    once per element: reading a whole header element by element cost 430 us, most of it
    that lookup (the encoders and the row checks read every element of each image).

    An element that needs more than a conversion (a deferred read, no VR, an ambiguous VR,
    a sequence) is decoded by ``Dataset.__getitem__`` itself.
    """
    elements = header._dict  # pydicom's store of elements (no public one)
    raw = [tag for tag, element in elements.items() if isinstance(element, RawDataElement)]
    if not raw:
        return header
    if _CHARACTER_SET in raw:
        header[_CHARACTER_SET]  # decoded first: it decides the others'
    encoding = header.original_character_set or header._character_set
    for tag in raw:
        element = elements[tag]
        if not isinstance(element, RawDataElement):
            continue
        if (element.value is None or element.VR is None or element.VR == "SQ"
                or element.VR in AMBIGUOUS_VR):
            header[tag]  # pydicom's own path, with its corrections
            continue
        elements[tag] = convert_raw_data_element(element, encoding=encoding, ds=header)
    return header


def _raw(header: Dataset, tag: BaseTag, vrs: frozenset[str]) -> bytes | None:
    """The undecoded bytes of an element of one of ``vrs`` (explicit VR, as read from a
    file or unpacked in a worker), or None when it is absent, decoded or of another VR."""
    element = header.get_item(tag)
    if isinstance(element, RawDataElement) and element.VR in vrs and isinstance(
            element.value, bytes):
        return element.value
    return None


_NUMBER_VRS = frozenset({"DS", "IS"})
_UID_VRS = frozenset({"UI"})


def header_numbers(header: Dataset, tag: BaseTag) -> tuple[float, ...] | None:
    """The values of a DS, IS or US element as floats (PS3.5 6.2: backslash-separated
    decimal strings padded with a space; 16-bit binary integers), or None when the
    element is absent or empty; raises ValueError for a value that is not a number.

    Read from the element's bytes while pydicom has not decoded it: decoding through
    pydicom cost three quarters of placing LUNA16's 3,408 headers in volumes
    (benchmarks/bench_luna16.py), and only these floats are wanted.
    """
    data = _raw(header, tag, _NUMBER_VRS)
    if data is not None:
        data = data.strip(b" \x00")
        return tuple(float(v) for v in data.split(b"\\")) if data else None
    element = header.get_item(tag)
    if (isinstance(element, RawDataElement) and element.VR == "US"
            and isinstance(element.value, bytes) and len(element.value) % 2 == 0):
        # PS3.5 6.2 US: 16-bit unsigned binary integers, in the transfer syntax's byte order
        order = "<" if element.is_little_endian else ">"
        return tuple(float(v) for v in struct.unpack(
            f"{order}{len(element.value) // 2}H", element.value)) or None
    element = header.get(tag)
    if element is None or element.value in (None, ""):
        return None
    value = element.value
    items = value if isinstance(value, (list, tuple)) or type(value).__name__ == (
        "MultiValue") else [value]
    return tuple(float(v) for v in items)


def header_uid(header: Dataset, tag: BaseTag) -> str:
    """The value of a UI element as text ("" when absent), as pydicom decodes it
    (PS3.5 6.2: trailing NUL padding removed), from its bytes while undecoded."""
    data = _raw(header, tag, _UID_VRS)
    if data is not None:
        return data.decode("iso8859").rstrip("\0 ")
    element = header.get(tag)
    return "" if element is None or element.value is None else str(element.value)


def _floats(value: Any, count: int) -> tuple[float, ...] | None:
    """``count`` finite numbers from a multi-valued DS, or None."""
    try:
        items = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    if len(items) != count or not all(math.isfinite(v) for v in items):
        return None
    return items


def z_position(header: Dataset) -> float | None:
    """The position of an image along its slice normal, in mm, or None without a usable
    Image Position and Orientation (Patient).

    PS3.3 C.7.6.2.1.1: the first three values of Image Orientation (Patient) are the row
    direction cosines, the last three the column direction cosines; the normal is their
    cross product, and the position is Image Position (Patient) projected on it.
    """
    orientation = _floats(header.get("ImageOrientationPatient"), 6)
    position = _floats(header.get("ImagePositionPatient"), 3)
    if orientation is None or position is None:
        return None
    rx, ry, rz, cx, cy, cz = orientation
    normal = (ry * cz - rz * cy, rz * cx - rx * cz, rx * cy - ry * cx)
    return sum(p * n for p, n in zip(position, normal, strict=True))


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
