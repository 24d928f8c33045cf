"""Load a profile: TOML -> JSON Schema -> meaning checks -> :class:`~csv2sr.mapping.spec.Spec`.

Three steps, each raising :class:`ProfileError`, which names the file, the key (a TOML
path such as ``groups[0].measurements[1].unit``) and what is wrong, on one line:

1. the TOML text is parsed (``tomllib``; ``tomli`` on Python 3.10);
2. it is validated against the JSON Schema shipped with the package (``schema.json``, the
   reference of every key);
3. its meaning is checked: every column named exists and has the type its role needs,
   every code resolves (the profile's ``[codes]``, csv2sr's code table
   :data:`csv2sr.dicom.codes.CODE_TABLE`, then pydicom's concept dictionary), every
   geometry has its coordinates, a derived value has its pixel spacing, and every column
   is used or marked ``ignore``.

A built-in profile is a TOML file in ``csv2sr/mapping/profiles/`` (``ccc2017`` first).
"""

from __future__ import annotations

import difflib
import functools
import json
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

from csv2sr.dicom.codes import CODE_TABLE
from csv2sr.errors import SourceError
from csv2sr.mapping.record import Concept
from csv2sr.mapping.spec import (
    CellSpec,
    CodeSource,
    DocumentSpec,
    FrameSpec,
    GeometrySpec,
    GroupSpec,
    IdentitySpec,
    ImageSpec,
    InputSpec,
    JoinSpec,
    MeasurementSpec,
    ObserverSpec,
    QualitativeSpec,
    ReportSpec,
    ResolveSpec,
    SeriesRule,
    SliceSpec,
    Source,
    Spec,
    template_fields,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover  (Python 3.10)
    import tomli as tomllib

__all__ = ["ProfileError", "builtin_profiles", "load_profile", "resolve_code", "schema"]

_NUMERIC = frozenset({"IS", "DS", "coordinate", "points"})
_COORDINATE_TYPES = frozenset({"coordinate"})
_IDENTITY_REQUIRED = ("patient_id", "study_uid", "series_uid", "sop_instance_uid",
                      "sop_class_uid")
_IDENTITY_TYPES: dict[str, frozenset[str]] = {
    "patient_id": frozenset({"text"}), "patient_name": frozenset({"text"}),
    "study_uid": frozenset({"UI"}), "series_uid": frozenset({"UI"}),
    "sop_instance_uid": frozenset({"UI"}), "sop_class_uid": frozenset({"UI"}),
    "study_date": frozenset({"DA"}), "study_time": frozenset({"TM"}),
}
_GEOMETRY_AREAS = frozenset({"box", "polygon", "ellipse", "circle"})
_LENGTHS = frozenset({"line", "polyline"})


class ProfileError(SourceError):
    """A profile that cannot be used: ``str()`` is ``"<file>: <key>: <what is wrong>"``."""

    def __init__(self, source: str | Path, key: str, message: str) -> None:
        super().__init__(source, f"{key}: {message}" if key else message)
        self.key = key
        self.problem = message


# --- where profiles are ----------------------------------------------------------------

def _builtin_dir() -> Any:
    return resources.files("csv2sr.mapping") / "profiles"


def builtin_profiles() -> list[str]:
    """The names of the built-in profiles."""
    return sorted(
        entry.name[: -len(".toml")] for entry in _builtin_dir().iterdir()
        if entry.name.endswith(".toml")
    )


@functools.cache
def schema() -> dict[str, Any]:
    """The JSON Schema of a profile (the package data ``csv2sr/mapping/schema.json``)."""
    text = (resources.files("csv2sr.mapping") / "schema.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def load_profile(name_or_path: str | Path) -> Spec:
    """Load a built-in profile by name, or a profile file (``*.toml`` or any path with a
    folder part); raises :class:`ProfileError`."""
    text_name = str(name_or_path)
    if isinstance(name_or_path, Path) or text_name.endswith(".toml") or "/" in text_name:
        path = Path(name_or_path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ProfileError(path, "", "no such profile file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ProfileError(path, "", f"cannot be read: {exc}") from None
        return _load_text(text, path)
    return _builtin(text_name)


@functools.cache
def _builtin(name: str) -> Spec:
    entry = _builtin_dir() / f"{name}.toml"
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name) or not entry.is_file():
        known = ", ".join(builtin_profiles())
        raise ProfileError(name, "", f"unknown profile; built-in: {known}; or give a PATH.toml")
    with resources.as_file(entry) as path:
        return _load_text(entry.read_text(encoding="utf-8"), Path(path), schema_checked=True)


def _load_text(text: str, path: Path, *, schema_checked: bool = False) -> Spec:
    """The profile of ``text``: TOML, the JSON schema (step 2), then the builder's own
    checks.  ``schema_checked``: a built-in profile, which the test suite proves valid by
    the schema (``tests/test_profile_cli.py``), is not checked again at every start
    (importing jsonschema and checking took 0.15 s of each command that loads one)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(path, "", f"not TOML: {exc}") from None
    if not schema_checked:
        _validate_schema(data, path)
    return _Builder(data, path, text).build()


# --- step 2: the schema ------------------------------------------------------------------

def key_path(parts: Iterator[Any] | Any) -> str:
    """``groups[0].measurements[1].unit`` from a JSON path (keys and list indexes)."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _validate_schema(data: dict[str, Any], path: Path) -> None:
    import jsonschema  # noqa: PLC0415  (only when a profile is loaded)

    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: (list(e.absolute_path), e.message))
    if not errors:
        return
    error = jsonschema.exceptions.best_match(errors)
    where = key_path(iter(error.absolute_path))
    message = _schema_message(error)
    raise ProfileError(path, where, message)


def _schema_message(error: Any) -> str:
    """jsonschema's message, shortened for one line (the key is named separately)."""
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = re.findall(r"'([^']+)' was unexpected", error.message)
        names = ", ".join(extra) or error.message
        return f"unknown key {names}; allowed: {', '.join(allowed)}"
    if error.validator == "required":
        return str(error.message).replace("is a required property", "is required")
    if error.validator == "enum":
        return f"{error.instance!r} is not one of {', '.join(map(repr, error.validator_value))}"
    if error.validator in ("oneOf", "anyOf"):
        description = error.schema.get("description", "")
        first = description.split(". ")[0] if description else "see docs/profiles.md"
        return f"{error.instance!r} is not a valid value ({first})"
    message: str = error.message
    return message if len(message) <= 300 else message[:300] + "..."


# --- step 3: meaning ---------------------------------------------------------------------

@functools.cache
def _pydicom_codes() -> dict[tuple[str, str], tuple[str, ...]]:
    """(scheme, value) -> the meanings pydicom's concept dictionary gives it."""
    from pydicom.sr._concepts_dict import concepts  # noqa: PLC0415  (heavy, once)

    catalogue: dict[str, dict[str, dict[str, tuple[str, list[str]]]]] = concepts  # type: ignore[assignment]
    table: dict[tuple[str, str], list[str]] = {}
    for scheme, keywords in catalogue.items():
        for values in keywords.values():
            for value, (meaning, _cids) in values.items():
                meanings = table.setdefault((scheme, value), [])
                if meaning not in meanings:
                    meanings.append(meaning)
    return {key: tuple(meanings) for key, meanings in table.items()}


def resolve_code(label: str, own: Mapping[str, Concept]) -> Concept:
    """``SCHEME:value`` -> a :class:`Concept`: the profile's ``[codes]``, then csv2sr's code
    table, then pydicom's dictionary (which must give one meaning); ``ValueError`` else."""
    scheme, _, value = label.partition(":")
    if label in own:
        return own[label]
    meaning = CODE_TABLE.get((value, scheme))
    if meaning is not None:
        return Concept(value, scheme, meaning)
    meanings = _pydicom_codes().get((scheme, value), ())
    if len(meanings) == 1:
        return Concept(value, scheme, meanings[0])
    if meanings:
        raise ValueError(f"{label} has several meanings in pydicom's dictionary "
                         f"({', '.join(meanings)}): give one in [codes]")
    raise ValueError(f"{label} is not in pydicom's concept dictionary: give its meaning "
                     "in [codes]")


_PATIENT_POINTS: dict[str, tuple[int, bool]] = {
    "point": (1, True), "line": (2, True), "polyline": (2, False), "polygon": (3, False)}
"""The geometry types of space = "patient": the fewest vertices of each, and whether it
has exactly that many."""


def _patient_only(groups: list[dict[str, Any]]) -> bool:
    """True when every group is a TID 1410 group with a region in patient coordinates and
    no measurement has its own geometry (nothing refers to one image)."""
    return all(
        g.get("region", {}).get("space") == "patient"
        and not any("geometry" in m for m in g.get("measurements", ()))
        for g in groups
    )


class _Builder:
    """Step 3: the raw (schema-valid) data -> a checked :class:`Spec`."""

    def __init__(self, data: dict[str, Any], path: Path, text: str) -> None:
        self.data = data
        self.path = path
        self.text = text
        self.table_columns: tuple[str, ...] = tuple(data["input"]["columns"])
        self.join_columns: tuple[str, ...] = tuple(
            dict.fromkeys(c for j in data.get("joins", ()) for c in j["columns"]))
        self.columns: tuple[str, ...] = (
            *self.table_columns, *(c for c in self.join_columns if c not in self.table_columns))
        """The table's columns, then those the joins provide (usable like the table's)."""
        self.cells_raw: dict[str, Any] = data["cells"]
        self.used: dict[str, list[str]] = {}
        """column -> the keys that use it."""
        self.landing: dict[str, set[str]] = {}
        self.codes: dict[str, Concept] = {}
        self.resolved = False
        """True when rows are resolved through the image index (identity.needs, image)."""
        self.slice_range = False
        """True when identity.image.slice has a last slice (3D boxes: a TID 1411 group, or
        one TID 1410 group per slice)."""

    def fail(self, key: str, message: str) -> ProfileError:
        return ProfileError(self.path, key, message)

    # -- columns and codes --

    def column(self, name: str, key: str, types: frozenset[str] | None = None,
               landing: str = "") -> str:
        if name not in self.columns:
            close = difflib.get_close_matches(name, self.columns, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            where = "input.columns or a join's columns" if self.join_columns else "input.columns"
            raise self.fail(key, f"{name!r} is not a column of {where}{hint}")
        kind = self.cells_raw[name]["type"] if name in self.cells_raw else ""
        if types is not None and kind not in types:
            wanted = " or ".join(sorted(types))
            raise self.fail(key, f"column {name!r} is of type {kind!r} in [cells]; this key "
                            f"needs {wanted}")
        self.used.setdefault(name, []).append(key)
        if landing:
            self.landing.setdefault(name, set()).add(landing)
        return name

    def source(self, raw: Any, key: str, types: frozenset[str] | None = None,
               landing: str = "") -> Source:
        if isinstance(raw, dict):
            return Source(const=str(raw["const"]))
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return Source(const=repr(float(raw)) if isinstance(raw, float) else str(raw))
        text = str(raw)
        if "{" in text or "}" in text:
            fields = template_fields(text)
            if not fields:
                raise self.fail(key, f"template {text!r} names no column")
            for name in fields:
                self.column(name, key, landing=landing and f"{landing}_PART")
            self._check_template(text, key)
            return Source(template=text)
        return Source(column=self.column(text, key, types, landing))

    def _check_template(self, template: str, key: str) -> None:
        sample: dict[str, Any] = {
            name: (1 if self.cells_raw.get(name, {}).get("type") in ("IS", "unix_time")
                   else 1.5 if self.cells_raw.get(name, {}).get("type") == "coordinate"
                   else "x")
            for name in template_fields(template)
        }
        try:
            template.format(**sample)
        except (ValueError, KeyError, IndexError) as exc:
            raise self.fail(key, f"template {template!r} cannot be formatted: {exc}") from None

    def code(self, label: str, key: str) -> Concept:
        try:
            return resolve_code(label, self.codes)
        except ValueError as exc:
            raise self.fail(key, str(exc)) from None

    def code_source(self, raw: Any, key: str) -> CodeSource:
        if isinstance(raw, str):
            return CodeSource(const=self.code(raw, key))
        name = self.column(raw["column"], f"{key}.column",
                           frozenset({"enum", "text", "UI", "IS", "DS"}))
        mapping = {cell: (self.code(code, f"{key}.map.{cell}") if code else None)
                   for cell, code in raw["map"].items()}
        values = self.cells_raw[name].get("values")
        if self.cells_raw[name]["type"] == "enum" and values is not None:
            missing = [v for v in values if v not in mapping]
            extra = [v for v in mapping if v not in values]
            if missing:
                raise self.fail(f"{key}.map", f"no code for {', '.join(map(repr, missing))} "
                                f"of cells.{name}.values (\"\" for no item)")
            if extra:
                raise self.fail(f"{key}.map.{extra[0]}",
                                f"{extra[0]!r} is not one of cells.{name}.values")
        return CodeSource(column=name, map=mapping)

    # -- sections --

    def build(self) -> Spec:
        data = self.data
        self.codes = {label: Concept(label.partition(":")[2], label.partition(":")[0],
                                     meaning)
                      for label, meaning in data.get("codes", {}).items()}
        inputs = self._input(data["input"])
        joins = self._joins(data.get("joins", ()))
        cells = self._cells()
        identity = self._identity(data["identity"], _patient_only(data["groups"]))
        self.resolved = identity.resolved
        self.slice_range = bool(identity.image is not None and identity.image.slice is not None
                                and identity.image.slice.last)
        observer = self._observer(data["observer"])
        image = self._image(data.get("image", {}))
        groups = tuple(self._group(g, f"groups[{i}]", image)
                       for i, g in enumerate(data["groups"]))
        document = self._document(data["document"])
        report = self._report(data.get("report", {}))
        self._check_days(cells)
        self._check_all_used(cells)
        cells = {name: replace(cell, landing=tuple(sorted(self.landing.get(name, ()))))
                 for name, cell in cells.items()}
        return Spec(
            name=data["name"], title=data.get("title", ""), path=self.path, input=inputs,
            cells=cells, identity=identity, observer=observer, groups=groups, image=image,
            document=document, report=report, codes=self.codes, text=self.text, joins=joins,
        )

    def _input(self, raw: dict[str, Any]) -> InputSpec:
        kind = raw.get("format", "csv")
        delimiter = raw.get("delimiter", "\t" if kind == "tsv" else ",")
        encoding = raw.get("encoding", "utf-8")
        try:
            "".encode(encoding)
        except LookupError:
            raise self.fail("input.encoding", f"{encoding!r} is not a known encoding") from None
        required = tuple(raw.get("required", self.table_columns))
        for i, name in enumerate(required):
            if name not in self.table_columns:
                raise self.fail(f"input.required[{i}]", f"{name!r} is not in input.columns")
        return InputSpec(kind, delimiter, encoding, self.table_columns, required)

    def _joins(self, raw: Any) -> tuple[JoinSpec, ...]:
        """``[[joins]]``: each key column is the table's, the columns provided are not."""
        found: list[JoinSpec] = []
        names: set[str] = set()
        for i, join in enumerate(raw):
            key = f"joins[{i}]"
            if join["name"] in names:
                raise self.fail(f"{key}.name", f"{join['name']!r} names another join too")
            names.add(join["name"])
            columns = tuple(join["key"])
            on = tuple(join.get("on", columns))
            if len(on) != len(columns):
                raise self.fail(f"{key}.on", f"{len(on)} join column(s) for {len(columns)} "
                                "key column(s): give as many, in the same order")
            for j, name in enumerate(columns):
                if name not in self.table_columns:
                    raise self.fail(f"{key}.key[{j}]", f"{name!r} is not in input.columns")
                self.used.setdefault(name, []).append(f"{key}.key")
            for j, name in enumerate(join["columns"]):
                if name in self.table_columns:
                    raise self.fail(f"{key}.columns[{j}]", f"{name!r} is a column of the "
                                    "table already")
                if name in on:
                    raise self.fail(f"{key}.columns[{j}]", f"{name!r} is the join's key")
            file = Path(join["file"])
            found.append(JoinSpec(
                name=join["name"], key=f"{key}.file",
                path=file if file.is_absolute() else self.path.parent / file,
                format=join.get("format", "csv"), columns=columns, on=on,
                provides=tuple(join["columns"]),
            ))
        return tuple(found)

    def _cells(self) -> dict[str, CellSpec]:
        for name in self.cells_raw:
            if name not in self.columns:
                raise self.fail(f"cells.{name}", "not a column of input.columns")
        cells = {}
        for name in self.columns:
            if name not in self.cells_raw:
                raise self.fail("cells", f"column {name!r} has no entry (every column needs a "
                                "type; 'ignore' if the SR does not carry it)")
            cells[name] = self._cell(name, self.cells_raw[name])
        return cells

    def _cell(self, name: str, raw: dict[str, Any]) -> CellSpec:
        key = f"cells.{name}"
        kind = raw["type"]
        for option, allowed in (("min", _NUMERIC), ("max", _NUMERIC),
                                ("greater_than", _NUMERIC), ("values", {"enum"}),
                                ("repair", {"TM"}), ("of", {"spreadsheet_day"})):
            if option in raw and kind not in allowed:
                raise self.fail(f"{key}.{option}", f"not an option of type {kind!r}")
        if kind == "enum" and "values" not in raw:
            raise self.fail(key, "type 'enum' needs 'values'")
        if kind == "spreadsheet_day" and "of" not in raw:
            raise self.fail(key, "type 'spreadsheet_day' needs 'of' (its unix_time column)")
        if "default" in raw and not raw.get("optional"):
            raise self.fail(f"{key}.default", "a default needs optional = true")
        cell = CellSpec(
            column=name, type=kind, optional=bool(raw.get("optional", False)),
            default=str(raw.get("default", "")), minimum=raw.get("min"),
            maximum=raw.get("max"), greater_than=raw.get("greater_than"),
            unique=bool(raw.get("unique", False)), values=tuple(raw.get("values", ())),
            repair=raw.get("repair", ""), of=raw.get("of", ""),
        )
        if cell.default:
            from csv2sr.dicom.vr import VRError  # noqa: PLC0415
            from csv2sr.mapping.cells import PARSERS  # noqa: PLC0415

            try:
                PARSERS[kind](cell.default, cell)
            except VRError as exc:
                raise self.fail(f"{key}.default", f"{cell.default!r}: {exc}") from None
        return cell

    def _identity(self, raw: dict[str, Any], patient_only: bool) -> IdentitySpec:
        """PS3.3 C.7.1.1, C.7.2.1, C.7.3.1, C.12.1.  Without a SOP Instance UID when every
        geometry is in patient coordinates: an SCOORD3D names no image (PS3.3 C.18.9), and
        the image the SR lists as evidence is found in the source images' index by the
        series and the point (:mod:`csv2sr.images.volume`)."""
        needs = tuple(raw.get("needs", ()))
        found: dict[str, Source | None] = {}
        for name, types in _IDENTITY_TYPES.items():
            key = f"identity.{name}"
            if name in raw:
                if name in needs:
                    raise self.fail(key, "given, and listed in identity.needs: one or the other")
                landing = {"patient_id": "LO", "patient_name": "PN"}.get(name, "")
                found[name] = self.source(raw[name], key, types, landing)
            elif (name in _IDENTITY_REQUIRED and name not in needs
                  and not (patient_only and name == "sop_instance_uid")):
                raise self.fail(key, "not given: give a column or { const = \"...\" }, or list "
                                "it in identity.needs (taken from the source image's header "
                                "with --images or --images-url)")
            else:
                found[name] = None
        image = self._resolve(raw["image"], found) if "image" in raw else None
        self._check_needs(needs, image, found)
        return IdentitySpec(needs=needs, image=image, **found)

    def _resolve(self, raw: dict[str, Any], found: dict[str, Source | None]) -> ResolveSpec:
        """``[identity.image]``: series rule, slice and frame columns."""
        key = "identity.image"
        series = None
        if "series" in raw:
            if found["series_uid"] is not None:
                raise self.fail(f"{key}.series", "identity.series_uid is given: a series "
                                "rule is for rows that do not name their series")
            patient = found["patient_id"]
            if patient is None or patient.const is not None:
                raise self.fail(f"{key}.series", "a series is chosen among the series of "
                                "the row's patient: give identity.patient_id as a column")
            rule = raw["series"]
            if "description" in rule:
                try:
                    re.compile(rule["description"])
                except re.error as exc:
                    raise self.fail(f"{key}.series.description",
                                    f"not a regular expression ({exc})") from None
            series = SeriesRule(rule.get("modality", ""), rule.get("description", ""))
        slice_spec = None
        if "slice" in raw:
            part = raw["slice"]
            by = part.get("by", "index")
            types = frozenset({"DS", "coordinate", "IS"}) if by == "z" else frozenset({"IS"})
            column = self.column(part["column"], f"{key}.slice.column", types)
            for option, allowed in (("order", "index"), ("base", "index")):
                if option in part and by != allowed:
                    raise self.fail(f"{key}.slice.{option}", f"{option} is for by = \"index\"")
            if "tolerance" in part and by == "instance_number":
                raise self.fail(f"{key}.slice.tolerance", "an Instance Number has no tolerance")
            if found["sop_instance_uid"] is not None:
                raise self.fail(f"{key}.slice", "identity.sop_instance_uid is given: the "
                                "slice is for rows that do not name their instance")
            if series is None and found["series_uid"] is None:
                raise self.fail(f"{key}.slice", "a slice is a slice of a series: give "
                                "identity.series_uid or identity.image.series")
            last = ""
            if "last" in part:
                last = self.column(part["last"], f"{key}.slice.last", types)
                if "frame" in raw:
                    raise self.fail(f"{key}.slice.last", "a slice range and a frame: one "
                                    "or the other")
            slice_spec = SliceSpec(column, by, part.get("order", "instance_number"),
                                   int(part.get("base", 0)),
                                   float(part.get("tolerance", 0.01)), last)
        frame = None
        if "frame" in raw:
            part = raw["frame"]
            column = self.column(part["column"], f"{key}.frame.column", frozenset({"IS"}))
            frame = FrameSpec(column, int(part.get("base", 1)))
        if series is not None and slice_spec is None:
            raise self.fail(f"{key}.series", "a series rule needs identity.image.slice (which "
                            "instance of the series)")
        if not raw:
            raise self.fail(key, "empty: give series, slice or frame")
        return ResolveSpec(series, slice_spec, frame)

    def _check_needs(self, needs: tuple[str, ...], image: ResolveSpec | None,
                     found: dict[str, Source | None]) -> None:
        slice_given = image is not None and image.slice is not None
        if "sop_instance_uid" in needs and not slice_given:
            raise self.fail("identity.needs", "sop_instance_uid is resolved through "
                            "identity.image.slice: give it")
        if slice_given and "sop_instance_uid" not in needs:
            raise self.fail("identity.needs", "identity.image.slice resolves the "
                            "sop_instance_uid: list it in identity.needs")
        rule = image is not None and image.series is not None
        if rule and "series_uid" not in needs:
            raise self.fail("identity.needs", "identity.image.series resolves the "
                            "series_uid: list it in identity.needs")
        if "series_uid" in needs and not rule and found["sop_instance_uid"] is None:
            raise self.fail("identity.needs", "series_uid is taken from the image: give "
                            "identity.sop_instance_uid or identity.image.series")

    def _observer(self, raw: dict[str, Any]) -> ObserverSpec:
        kind = raw.get("type", "person")
        if kind == "device":
            for option in ("login", "role"):
                if option in raw:
                    raise self.fail(f"observer.{option}", "a device observer (TID 1004) has no "
                                    f"{option}")
        elif "device_uid" in raw:
            raise self.fail("observer.device_uid", "only a device observer has a UID")
        name = self.source(raw["name"], "observer.name",
                           landing="PN" if kind == "person" else "LO")
        login = self.source(raw["login"], "observer.login", landing="UT") \
            if "login" in raw else None
        role = self.code_source(raw["role"], "observer.role") if "role" in raw else None
        device_uid = self.source(raw["device_uid"], "observer.device_uid", frozenset({"UI"})) \
            if "device_uid" in raw else None
        return ObserverSpec(kind, name, login, role, device_uid)

    def _image(self, raw: dict[str, Any]) -> ImageSpec:
        number = frozenset({"coordinate", "IS", "DS"})
        columns = self.source(raw["columns"], "image.columns", number) \
            if "columns" in raw else None
        rows = self.source(raw["rows"], "image.rows", number) if "rows" in raw else None
        spacing = None
        if "pixel_spacing" in raw:
            first, second = raw["pixel_spacing"]
            spacing = (self.source(first, "image.pixel_spacing[0]", number),
                       self.source(second, "image.pixel_spacing[1]", number))
        return ImageSpec(columns, rows, spacing)

    def _point(self, raw: list[Any], key: str) -> tuple[Source, Source]:
        number = frozenset({"coordinate"})
        if len(raw) != 2:
            raise self.fail(key, f"a point in pixels is [x, y], not {len(raw)} values "
                            "([x, y, z] is for space = \"patient\")")
        return (self.source(raw[0], f"{key}[0]", number),
                self.source(raw[1], f"{key}[1]", number))

    def _patient_geometry(self, raw: dict[str, Any], key: str, given: set[str]
                          ) -> GeometrySpec:
        """Points in patient millimetres (PS3.3 C.7.6.2.1.1) in the series' Frame of
        Reference: an SCOORD3D (PS3.3 C.18.9.1.2) POINT, a POLYLINE (a line, 2 points, or
        a polyline, 2 or more) or a POLYGON (3 or more; closed), each vertex [x, y, z]
        from its own columns."""
        kind = raw["type"]
        if kind not in _PATIENT_POINTS:
            raise self.fail(f"{key}.space", "space = \"patient\" is for a point, line, "
                            f"polyline or polygon, not a {kind}")
        for option in ("units", "origin", "base"):
            if option in raw:
                raise self.fail(f"{key}.{option}", "a geometry in patient millimetres has no "
                                f"{option} (pixels only)")
        extra = sorted(given - {"points"})
        if extra:
            raise self.fail(f"{key}.{extra[0]}", f"not a key of a {kind} in patient "
                            "millimetres (it takes points = [[x, y, z], ...])")
        count = len(raw.get("points", []))
        fewest, exactly = _PATIENT_POINTS[kind]
        if count < fewest or (exactly and count != fewest):
            many = f"{fewest}" if exactly else f"at least {fewest}"
            raise self.fail(f"{key}.points", f"a {kind} in patient millimetres has {many} "
                            "point(s), each [x, y, z]")
        number = frozenset({"coordinate"})
        pairs: list[tuple[Source, Source]] = []
        zs: list[Source] = []
        for n, point in enumerate(raw["points"]):
            where = f"{key}.points[{n}]"
            if len(point) != 3:
                raise self.fail(where, f"a point in patient millimetres is [x, y, z], not "
                                f"{len(point)} values")
            x, y, z = (self.source(v, f"{where}[{i}]", number) for i, v in enumerate(point))
            pairs.append((x, y))
            zs.append(z)
        return GeometrySpec(type=kind, key=key, points=tuple(pairs), zs=tuple(zs),
                            space="patient")

    def _geometry(self, raw: dict[str, Any], key: str, image: ImageSpec) -> GeometrySpec:
        kind = raw["type"]
        given = set(raw) - {"type", "units", "origin", "base", "space"}
        space = raw.get("space", "image")
        if space == "patient":
            return self._patient_geometry(raw, key, given)

        def need(*names: str) -> None:
            missing = [n for n in names if n not in raw]
            if missing:
                raise self.fail(key, f"a {kind} needs {', '.join(missing)}")

        def only(*names: str) -> None:
            extra = sorted(given - set(names))
            if extra:
                raise self.fail(f"{key}.{extra[0]}", f"not a key of a {kind} geometry "
                                f"(it takes {', '.join(names)})")

        points: tuple[tuple[Source, Source], ...] = ()
        form = ""
        sources: dict[str, Source] = {}
        column = ""
        number = frozenset({"coordinate"})
        if kind in ("point", "line"):
            need("points")
            only("points")
            count = 1 if kind == "point" else 2
            if len(raw["points"]) != count:
                raise self.fail(f"{key}.points", f"a {kind} has {count} point(s), not "
                                f"{len(raw['points'])}")
        elif kind in ("polyline", "polygon"):
            need("column")
            only("column")
            column = self.column(raw["column"], f"{key}.column", frozenset({"points"}))
        elif kind == "box":
            if "corners" in raw:
                form = "corners"
                only("corners")
            elif "center" in raw:
                form = "center"
                need("width", "height")
                only("center", "width", "height")
            else:
                form = "xywh"
                need("x", "y", "width", "height")
                only("x", "y", "width", "height")
        elif kind == "ellipse":
            if "points" in raw:
                form = "points"
                only("points")
                if len(raw["points"]) != 4:
                    raise self.fail(f"{key}.points", "an ellipse has 4 points (major axis "
                                    "ends, then minor axis ends; PS3.3 C.18.6.1.2)")
            else:
                form = "center"
                need("center", "width", "height")
                only("center", "width", "height")
        elif kind == "circle":
            need("center")
            forms = [f for f in ("point", "radius", "diameter") if f in raw]
            if len(forms) != 1:
                raise self.fail(key, "a circle needs one of point, radius, diameter")
            form = forms[0]
            only("center", form)
        for name in ("points", "corners"):
            if name in raw:
                points = tuple(self._point(p, f"{key}.{name}[{i}]")
                               for i, p in enumerate(raw[name]))
        for name in ("center", "point"):
            if name in raw:
                points = (*points, self._point(raw[name], f"{key}.{name}"))
        for name in ("x", "y", "width", "height", "radius", "diameter"):
            if name in raw:
                sources[name] = self.source(raw[name], f"{key}.{name}", number)
        units = raw.get("units", "pixel")
        if units == "fraction":
            if kind != "box":
                raise self.fail(f"{key}.units", "fractions of the image size are for boxes")
            if (image.columns is None or image.rows is None) and not self.resolved:
                raise self.fail(f"{key}.units", "fractions need the image size: [image] "
                                "columns and rows, or the image's Rows and Columns from "
                                "the index (identity.needs or [identity.image])")
        origin = raw.get("origin", "dicom")
        if "base" in raw and origin != "pixel-center":
            raise self.fail(f"{key}.base", "base is for origin = \"pixel-center\"")
        return GeometrySpec(
            type=kind, key=key, points=points, column=column, form=form,
            x=sources.get("x"), y=sources.get("y"), width=sources.get("width"),
            height=sources.get("height"),
            radius=sources.get("radius") or sources.get("diameter"),
            units=units, origin=origin, base=int(raw.get("base", 0)),
        )

    def _group(self, raw: dict[str, Any], key: str, image: ImageSpec) -> GroupSpec:
        template = raw.get("template", "1501")
        region = None
        if template == "1411" and not self.slice_range:
            raise self.fail(f"{key}.template", "a TID 1411 volumetric group has a region on "
                            "each slice of a range: give identity.image.slice.last")
        if "region" in raw:
            if template not in ("1410", "1411"):
                raise self.fail(f"{key}.region", "a region is the Image Region of a TID 1410 "
                                "group: set template = \"1410\"")
            region = self._geometry(raw["region"], f"{key}.region", image)
            if template == "1410" and self.slice_range and region.patient:
                raise self.fail(f"{key}.region.space", "identity.image.slice.last draws the "
                                "region on each slice of a range: give it in pixels, not "
                                "in patient millimetres")
        elif template in ("1410", "1411"):
            raise self.fail(key, f"a TID {template} group needs its region (the Image "
                            "Region)")
        measurements = tuple(
            self._measurement(m, f"{key}.measurements[{i}]", template, region, image)
            for i, m in enumerate(raw.get("measurements", ()))
        )
        qualitative = tuple(
            QualitativeSpec(f"{key}.qualitative[{i}]",
                            self.code(q["concept"], f"{key}.qualitative[{i}].concept"),
                            self.code_source(q["value"], f"{key}.qualitative[{i}].value"))
            for i, q in enumerate(raw.get("qualitative", ()))
        )
        if not measurements and not qualitative and region is None:
            raise self.fail(key, "a group without measurements, qualitative evaluations or "
                            "region says nothing")
        per_slice = template == "1410" and self.slice_range and region is not None
        if per_slice and measurements:
            raise self.fail(f"{key}.measurements", "one TID 1410 group per slice of a 3D "
                            "box repeats its content on every slice: a measurement of the "
                            "box is made on the whole range, in a TID 1411 group (template "
                            "= \"1411\")")
        return GroupSpec(
            key=key, template=template,
            tracking_identifier=self.source(raw["tracking_identifier"],
                                            f"{key}.tracking_identifier", landing="LO"),
            finding=self.code_source(raw["finding"], f"{key}.finding")
            if "finding" in raw else None,
            finding_site=self.code_source(raw["finding_site"], f"{key}.finding_site")
            if "finding_site" in raw else None,
            measurements=measurements, qualitative=qualitative, region=region,
            per_slice=per_slice,
        )

    def _measurement(self, raw: dict[str, Any], key: str, template: str,
                     region: GeometrySpec | None, image: ImageSpec) -> MeasurementSpec:
        geometry = None
        if "geometry" in raw:
            if template in ("1410", "1411"):
                raise self.fail(f"{key}.geometry", f"the NUMs of a TID {template} group are "
                                "made on "
                                "its region: give the geometry as the group's region")
            geometry = self._geometry(raw["geometry"], f"{key}.geometry", image)
            if geometry.patient:
                raise self.fail(f"{key}.geometry.space", "a geometry in patient millimetres is "
                                "the Image Region 3D of a TID 1410 group: give it as the "
                                "group's region")
        unit = self.code(f"UCUM:{raw['unit']}", f"{key}.unit")
        value: Source | None = None
        derive = ""
        if isinstance(raw["value"], dict):
            derive = raw["value"]["derive"]
            self._check_derive(derive, geometry or region, unit, image, key)
        else:
            value = self.source(raw["value"], f"{key}.value", frozenset({"DS"}))
        return MeasurementSpec(key=key, concept=self.code(raw["concept"], f"{key}.concept"),
                               unit=unit, value=value, derive=derive, geometry=geometry)

    def _check_derive(self, derive: str, geometry: GeometrySpec | None, unit: Concept,
                      image: ImageSpec, key: str) -> None:
        where = f"{key}.value.derive"
        if geometry is None:
            raise self.fail(where, f"a derived {derive} needs a geometry")
        if geometry.patient:
            raise self.fail(where, f"a derived {derive} is made from pixels: not from "
                            "points in patient millimetres")
        fits = {"length": _LENGTHS, "area": _GEOMETRY_AREAS, "diameter": {"circle"}}[derive]
        if geometry.type not in fits:
            raise self.fail(where, f"the {derive} of a {geometry.type} cannot be derived "
                            f"(only of: {', '.join(sorted(fits))})")
        if geometry.units == "fraction" and image.columns is None:
            raise self.fail(where, f"a derived {derive} of fractions needs the image size "
                            "in [image] (columns and rows)")
        if image.pixel_spacing is None:
            raise self.fail(where, f"a derived {derive} in mm needs the pixel spacing: "
                            "[image] pixel_spacing")
        wanted = "mm2" if derive == "area" else "mm"
        if unit.value != wanted:
            raise self.fail(f"{key}.unit", f"a derived {derive} is in {wanted}, not "
                            f"{unit.value}")

    def _document(self, raw: dict[str, Any]) -> DocumentSpec:
        per = raw.get("per", "row")
        if raw.get("by_observer") and per == "row":
            raise self.fail("document.by_observer", "one SR per row has one observer already")
        instance = raw.get("instance_number", "")
        if instance:
            self.column(instance, "document.instance_number", frozenset({"IS"}))
        file_name = raw["file_name"]
        for name in template_fields(file_name):
            self.column(name, "document.file_name")
        self._check_template(file_name, "document.file_name")
        identity = tuple(raw["uid_identity"])
        for i, name in enumerate(identity):
            self.column(name, f"document.uid_identity[{i}]")
        return DocumentSpec(
            per=per, by_observer=bool(raw.get("by_observer", False)),
            series=raw.get("series", "document"), instance_number=instance, file_name=file_name,
            content_datetime=self.source(raw["content_datetime"], "document.content_datetime",
                                         frozenset({"unix_time", "DT"})),
            uid_identity=identity,
            series_description=raw.get("series_description", ""),
            series_number=int(raw.get("series_number", 1)),
            manufacturer=raw.get("manufacturer", "csv2sr"),
            ohif=bool(raw.get("ohif", False)),
            procedure=self.code_source(raw["procedure"], "document.procedure")
            if "procedure" in raw else None,
        )

    def _report(self, raw: dict[str, Any]) -> ReportSpec:
        tally = tuple(raw.get("tally", ()))
        for i, name in enumerate(tally):
            if name not in self.columns:
                raise self.fail(f"report.tally[{i}]", f"{name!r} is not a column")
        labels = raw.get("labels", {})
        for name in labels:
            if name not in tally:
                raise self.fail(f"report.labels.{name}", "labels are for report.tally columns")
        return ReportSpec(tally, {k: dict(v) for k, v in labels.items()})

    def _check_days(self, cells: dict[str, CellSpec]) -> None:
        for name, cell in cells.items():
            if cell.type == "spreadsheet_day":
                target = cells.get(cell.of)
                if target is None or target.type != "unix_time":
                    raise self.fail(f"cells.{name}.of", f"{cell.of!r} is not a unix_time column")

    def _check_all_used(self, cells: dict[str, CellSpec]) -> None:
        for name, cell in cells.items():
            if cell.type in ("ignore", "spreadsheet_day"):
                if name in self.used and cell.type == "ignore":
                    raise self.fail(f"cells.{name}", f"type 'ignore', but used by "
                                    f"{self.used[name][0]}")
                continue
            if name not in self.used:
                raise self.fail(f"cells.{name}", "no key uses this column: map it to SR "
                                "content, or give it type = \"ignore\" (export leaves it empty)")
