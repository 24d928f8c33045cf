"""Which Cornerstone3D tool OHIF makes of each group of every test profile, with the real
dcmjs and ``@cornerstonejs/adapters`` (issue 12, items 2 and 4).

Seeded generated rows of every test profile (tests/data/profiles, the built-in ccc2017,
and tests/data/ohif/shapes.toml, which draws each shape under its NUM) are converted with
and without ``--ohif``. The ``--ohif`` SRs are then hydrated as OHIF 3.13 does
(``tests/js/cornerstone.mjs hydrate``, see test_ohif.py). For every group:

- A group with a tool (the table :data:`EXPECTED`, checked against the SR read with
  pydicom, not against csv2sr's own rule) gives exactly that tool. Its Tracking Identifier
  is the tool's prefix + the group's identifier, its value(s) the NUM(s), its handles the
  SCOORD points (float32, exact on the stub geometry).
- A group without one keeps its identifier and makes no tool.

The ``--ohif`` SRs have no dciodvfy error and no csv2sr validate error, and export gives the
same table as from the default SRs. Without node or the packages of tests/js the
hydration tests skip and say why.
"""

from __future__ import annotations

import csv
import itertools
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import ROOT
from csv2sr.conversion.batch import convert
from csv2sr.conversion.build import encode
from csv2sr.conversion.checks import Record, read_rows
from csv2sr.conversion.document import dataset_bytes
from csv2sr.conversion.fastpath import FastEncoder
from csv2sr.conversion.group import documents
from csv2sr.dicom.codes import CodeMode
from csv2sr.dicom.ohif import (
    CORNERSTONE3D_TAG,
    TOOLS,
    Graphic,
    Number,
    row_identifier,
    tool_for,
    tracking_identifier,
)
from csv2sr.export import write_table as export_table_file
from csv2sr.mapping.load import load_profile
from csv2sr.mapping.record import Document
from csv2sr.mapping.spec import Spec
from csv2sr.validate import validate_files
from csv2sr.validate.findings import Severity
from profilegen import TEST_PROFILES, generate_rows, profile_path, write_table
from test_ohif import run_hydrate

SHAPES = ROOT / "tests" / "data" / "ohif" / "shapes.toml"
PROFILES = [*TEST_PROFILES, "ccc2017", "ohif-shapes"]
ROWS = 24

EXPECTED: dict[str, list[str | None]] = {
    "boxes-fraction": ["RectangleROI"],  # TID 1410 box, no NUM
    "boxes-xywh": [None],                # TID 1410 box + Area: the NUM has no SCOORD
    "ccc2017": ["Length"],
    "ccc2018": ["Bidirectional"],
    "ellipses": [None, None, None],      # TID 1410 ellipse / polygon + Area; circle + Diameter
    "points": [None],                    # TID 1410 point + Diameter
    "ohif-shapes": ["RectangleROI", "EllipticalROI", "Probe", "Probe"],
}
"""The tool of each group of a profile (in the profile's group order); None: read-only."""


def _where(name: str) -> str:
    if name == "ohif-shapes":
        return str(SHAPES)
    return name if name == "ccc2017" else str(profile_path(name))


def test_every_test_profile_is_in_the_table() -> None:
    assert sorted(EXPECTED) == sorted(PROFILES)
    for name in PROFILES:
        assert len(EXPECTED[name]) == len(load_profile(_where(name)).groups), name


# -- the SR as written (pydicom) -----------------------------------------------------------


@dataclass
class SrGroup:
    """A measurement group as the file holds it."""

    identifier: str
    uid: str
    numbers: list[tuple[str, str, float]] = field(default_factory=list)
    """(code value, meaning, value) of each NUM."""
    number_points: list[np.ndarray] = field(default_factory=list)
    """The SCOORD points each NUM is INFERRED FROM (empty array: none)."""
    region: np.ndarray | None = None
    """The group's own SCOORD (TID 1410 Image Region)."""


def _points(item: pydicom.Dataset) -> np.ndarray:
    return np.asarray(item.GraphicData, dtype=np.float32).reshape(-1, 2)


def _concept(item: pydicom.Dataset) -> pydicom.Dataset | None:
    names = item.get("ConceptNameCodeSequence")
    return names[0] if names else None


def sr_groups(path: Path) -> dict[str, SrGroup]:
    """Tracking Unique Identifier -> the group, for every group of Imaging Measurements."""
    ds = pydicom.dcmread(path)
    container = next(i for i in ds.ContentSequence
                     if (c := _concept(i)) is not None and c.CodeValue == "126010")
    found = {}
    for group in container.ContentSequence:
        items = list(group.ContentSequence)
        by_code = {c.CodeValue: i for i in items if (c := _concept(i)) is not None}
        read = SrGroup(str(by_code["112039"].TextValue), str(by_code["112040"].UID))
        for item in items:
            if item.ValueType == "NUM":
                name = _concept(item)
                assert name is not None
                value = float(item.MeasuredValueSequence[0].NumericValue)
                read.numbers.append((str(name.CodeValue), str(name.CodeMeaning), value))
                scoords = [c for c in item.get("ContentSequence", []) if c.ValueType == "SCOORD"]
                read.number_points.append(_points(scoords[0]) if scoords else np.empty((0, 2)))
            elif item.ValueType == "SCOORD":
                read.region = _points(item)
        found[read.uid] = read
    return found


# -- conversion and hydration of every profile (cached per module) --------------------------


@dataclass
class Converted:
    name: str
    spec: Spec
    table: Path
    out: dict[bool, Path]
    """ohif -> output folder."""
    hydrated: dict[str, dict[str, Any]] = field(default_factory=dict)
    """--ohif SR path -> the node script's summary."""

    def files(self, ohif: bool) -> list[Path]:
        return sorted((self.out[ohif] / "sr").rglob("*.dcm"))


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Converted]:
    """Every profile's generated table converted both ways; the --ohif SRs of all of them
    hydrated in one node process."""
    found = {}
    for name in PROFILES:
        spec = load_profile(_where(name))
        folder = tmp_path_factory.mktemp(name)
        suffix = ".tsv" if spec.input.delimiter == "\t" else ".csv"
        rows = generate_rows(spec, ROWS, seed=sum(map(ord, name)) + 12)
        table = write_table(folder / f"table{suffix}", spec, rows)
        out = {}
        for ohif in (False, True):
            out[ohif] = folder / f"out-{ohif}"
            result = convert(table, out[ohif], profile=spec, ohif=ohif, jobs=1)
            assert result.converted == ROWS, [e.reason for e in result.errors[:3]]
        found[name] = Converted(name, spec, table, out)
    files = [f for c in found.values() for f in c.files(True)]
    result = run_hydrate(files, tmp_path_factory.mktemp("node"))
    for summary in result["files"]:
        for item in found.values():
            if Path(summary["path"]).is_relative_to(item.out[True]):
                item.hydrated[summary["path"]] = summary
    assert sum(len(c.hydrated) for c in found.values()) == len(files)
    return found


def _expected_tool(name: str, spec: Spec, identifier: str) -> str | None:
    """The group's tool, found by matching its identifier to the profile's groups: the
    generated identifiers of each group have their own form (box-1, ellipse-1, ...)."""
    tools = EXPECTED[name]
    if len(tools) == 1:
        return tools[0]
    heads = [str(g.tracking_identifier.template or "").split("{")[0] for g in spec.groups]
    (index,) = [i for i, head in enumerate(heads) if head and identifier.startswith(head)]
    return tools[index]


def _handles(tool: str, group: SrGroup) -> np.ndarray:
    """The handles a tool must have: the SCOORD points, in the tool's order."""
    if tool == "Bidirectional":
        long_axis, short_axis = _by_code(group, "103339001"), _by_code(group, "103340004")
        return np.concatenate([group.number_points[long_axis], group.number_points[short_axis]])
    points = group.number_points[0] if group.numbers else group.region
    assert points is not None
    if tool == "RectangleROI":  # corners 0, 1, 3, 2: top-left, top-right, bottom-left, ...
        return points[[0, 1, 3, 2]]
    return points


def _by_code(group: SrGroup, value: str) -> int:
    (index,) = [i for i, (code, _, _) in enumerate(group.numbers) if code == value]
    return index


def _stats(tool: str, group: SrGroup) -> dict[str, Any]:
    """The values the tool must carry: the NUM(s), as the adapter names them."""
    values = [v for _, _, v in group.numbers]
    if tool == "Length":
        return {"length": values[0], "unit": "mm"}
    if tool == "Bidirectional":
        return {"length": values[_by_code(group, "103339001")], "unit": "mm",
                "width": values[_by_code(group, "103340004")], "widthUnit": "mm"}
    if tool == "Probe":
        return {"value": values[0] if values else None}
    if tool == "RectangleROI":  # the area (0 when the profile carries none) in mm2
        return {"area": values[0], "areaUnit": "mm²"} if values else {"area": 0}
    # EllipticalROI: the area; no unit (the adapter's resolveUnit gets the unit's Code Value
    # where it expects the code), so Cornerstone3D measures again when drawn (docs/ohif.md)
    return {"area": values[0], "areaUnit": None}


def group_problems(name: str, spec: Spec, summary: dict[str, Any], default: SrGroup,
                   group: SrGroup) -> list[str]:
    """Why a --ohif group is not what EXPECTED says (empty when it is)."""
    where = f"{summary['path']} {default.identifier!r}"
    tool = _expected_tool(name, spec, default.identifier)
    made = [t for t in summary["tools"] if t["trackingUniqueIdentifier"] == group.uid]
    if tool is None:
        if made or group.identifier != default.identifier:
            return [f"{where}: read-only expected, got {made} as {group.identifier!r}"]
        return []
    if [t["tool"] for t in made] != [tool]:
        return [f"{where}: {tool} expected, got {[t['tool'] for t in made]} "
                f"(warnings {summary['warnings']})"]
    (made_tool,) = made
    problems = []
    if group.identifier != f"{CORNERSTONE3D_TAG}:{tool}:{default.identifier}" or \
            made_tool["trackingIdentifier"] != group.identifier:
        problems.append(f"{where}: tracking identifier {made_tool['trackingIdentifier']!r}")
    stats = made_tool["stats"]
    wanted = _stats(tool, group)
    if {k: stats.get(k) for k in wanted} != wanted:
        problems.append(f"{where}: stats {stats}, NUMs {group.numbers}")
    handles = np.asarray(made_tool["points"], dtype=np.float64)
    if not np.array_equal(handles, _handles(tool, group).astype(np.float64)):
        problems.append(f"{where}: handles {handles.tolist()} for {_handles(tool, group)}")
    if not summary["rehydratable"]:
        problems.append(f"{where}: OHIF would not offer to load it")
    return problems


@pytest.mark.parametrize("name", PROFILES)
def test_every_group_hydrates_to_its_tool_or_stays_read_only(
        converted: dict[str, Converted], name: str) -> None:
    item = converted[name]
    defaults = {uid: g for f in item.files(False) for uid, g in sr_groups(f).items()}
    problems: list[str] = []
    tools_seen: set[str | None] = set()
    for path in item.files(True):
        summary = item.hydrated[str(path)]
        assert summary["error"] is None, summary
        groups = sr_groups(path)
        for uid, group in groups.items():
            problems.extend(group_problems(name, item.spec, summary, defaults[uid], group))
            tools_seen.add(_expected_tool(name, item.spec, defaults[uid].identifier))
        wanted = sum(_expected_tool(name, item.spec, defaults[u].identifier) is not None
                     for u in groups)
        if len(summary["tools"]) != wanted:
            problems.append(f"{path}: {len(summary['tools'])} tools for {wanted} groups")
        if None not in tools_seen and summary["warnings"]:
            problems.append(f"{path}: adapter warnings {summary['warnings']}")
    assert problems == []
    assert tools_seen == set(EXPECTED[name])  # every group kind was drawn
    assert sorted(defaults) == sorted(
        uid for f in item.files(True) for uid in sr_groups(f))  # same groups, same UIDs


def test_default_srs_keep_the_identifiers_and_meanings(converted: dict[str, Converted]) -> None:
    """Without --ohif no identifier carries a prefix; with it, only the axis meanings the
    Bidirectional adapter looks for change (Long Axis, Short Axis), not the codes."""
    for item in converted.values():
        defaults = {u: g for f in item.files(False) for u, g in sr_groups(f).items()}
        tagged = {u: g for f in item.files(True) for u, g in sr_groups(f).items()}
        for uid, group in defaults.items():
            assert row_identifier(group.identifier) == group.identifier
            codes = [(c, v) for c, _, v in group.numbers]
            assert [(c, v) for c, _, v in tagged[uid].numbers] == codes
            meanings = {c: m for c, m, _ in tagged[uid].numbers}
            if "103339001" in meanings:
                assert meanings == {"103339001": "Long Axis", "103340004": "Short Axis"}
                assert {c: m for c, m, _ in group.numbers} == {
                    "103339001": "Long axis", "103340004": "Short axis"}


@pytest.mark.parametrize("name", PROFILES)
def test_export_of_ohif_srs_gives_the_same_table(
        converted: dict[str, Converted], name: str, tmp_path: Path) -> None:
    item = converted[name]
    tables = {}
    for ohif in (False, True):
        table = tmp_path / f"export-{ohif}.csv"
        result = export_table_file([item.out[ohif] / "sr"], table, profile=_where(name), jobs=1)
        assert result.ok and result.rows == ROWS, [str(p) for p in result.problems[:3]]
        tables[ohif] = table.read_bytes()
    assert tables[True] == tables[False]


def test_ohif_srs_validate_clean(converted: dict[str, Converted], dciodvfy: Path) -> None:
    """dciodvfy and csv2sr's own checks on every --ohif SR: no error."""
    files = [f for item in converted.values() for f in item.files(True)]
    report = validate_files(files, jobs=1, use_dciodvfy=True)
    assert report.tools["dciodvfy"] is not None
    assert len(report.files) == len(files)
    errors = [(f.path, x.source.value, x.message) for f in report.files for x in f.findings
              if x.severity is Severity.ERROR]
    assert errors == []


@pytest.mark.parametrize("name", PROFILES)
def test_fast_path_gives_highdicoms_bytes_with_ohif(name: str, tmp_path: Path) -> None:
    """--ohif changes identifiers and meanings before the document's shape is taken: the
    fast path's templates (and, for SRs of several groups, the composed pieces) still
    give the reference builder's bytes."""
    spec = load_profile(_where(name))
    rows = generate_rows(spec, 40, seed=len(name) * 31)
    table = write_table(tmp_path / "t.csv", spec, rows)
    items = list(read_rows(table, spec))
    assert all(isinstance(i, Record) for i in items)
    docs = [d for d in documents(items, spec, table) if isinstance(d, Document)]
    fast = FastEncoder(spec, CodeMode.SCT, ohif=True)
    assert [d.relpath for d in docs if fast.encode_bytes(d) != dataset_bytes(
        encode(d, spec, CodeMode.SCT, ohif=True))] == []
    composed = [plan for plan in fast.composer.plans.values() if plan is not None]
    assert fast.templates or composed
    assert all(t is not None for t in fast.templates.values())


# -- identifiers that look like a prefix ---------------------------------------------------


def test_identifiers_that_start_with_a_tool_prefix_round_trip(tmp_path: Path) -> None:
    """A row identifier that already starts with a tool's prefix gets one more: export
    takes exactly one off and gives the row's identifier back."""
    spec = load_profile(profile_path("ccc2018"))
    rows = generate_rows(spec, 12, seed=5)
    chance = random.Random(5)
    for n, row in enumerate(rows):
        tool = chance.choice(TOOLS)
        row["lesion"] = f"{CORNERSTONE3D_TAG}:{tool}:{n}:{row['lesion']}"[:64].strip()
    table = write_table(tmp_path / "t.csv", spec, rows)
    result = convert(table, tmp_path / "out", profile=spec, ohif=True, jobs=1)
    assert result.converted == len(rows), [e.reason for e in result.errors[:3]]
    back = tmp_path / "back.csv"
    exported = export_table_file([tmp_path / "out" / "sr"], back, profile=str(
        profile_path("ccc2018")), jobs=1)
    assert exported.ok
    with back.open(newline="", encoding="utf-8") as fh:
        lesions = sorted(r["lesion"] for r in csv.DictReader(fh))
    assert lesions == sorted(r["lesion"] for r in rows)


@given(st.sampled_from(TOOLS), st.text(max_size=40))
def test_row_identifier_takes_off_one_prefix_of_every_tool(tool: str, identifier: str) -> None:
    assert row_identifier(tracking_identifier(tool, identifier, True)) == identifier
    assert row_identifier(f"{CORNERSTONE3D_TAG}:{tool}") == ""


# -- the rules of tool_for on generated shapes ---------------------------------------------

_AREA = ("42798000", "SCT")
_coordinate = st.floats(min_value=0, max_value=4096, allow_nan=False, width=32)


@given(_coordinate, _coordinate, _coordinate, _coordinate, st.integers(0, 3), st.booleans())
def test_any_axis_aligned_box_is_a_rectangle(x0: float, y0: float, x1: float, y1: float,
                                              start: int, reverse: bool) -> None:
    """Whatever corner the outline starts at and whichever way it turns, a closed
    axis-aligned box with an area is a RectangleROI (with an Area NUM, or as a region
    without NUM); a degenerate one, or the same with one corner moved, is not."""
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    if reverse:
        corners.reverse()
    corners = corners[start:] + corners[:start]
    flat = tuple(itertools.chain.from_iterable([*corners, corners[0]]))
    box = Graphic("POLYLINE", flat, "1.2.3")
    proper = x0 != x1 and y0 != y1
    assert (tool_for("1501", None, [Number(_AREA, box)]) == "RectangleROI") is proper
    assert (tool_for("1410", box, []) == "RectangleROI") is proper
    assert tool_for("1410", box, [Number(_AREA, None)]) is None  # NUM without SCOORD
    assert tool_for("1501", None, [Number(("81827009", "SCT"), box)]) is None  # not an area
    moved = Graphic("POLYLINE", (*flat[:2], flat[2] + 1, flat[3] + 1, *flat[4:]), "1.2.3")
    assert tool_for("1501", None, [Number(_AREA, moved)]) is None


def test_the_rules_of_each_tool() -> None:
    line = Graphic("POLYLINE", (1, 2, 3, 4), "1.2.3")
    other_line = Graphic("POLYLINE", (1, 2, 3, 4), "1.2.4")
    ellipse = Graphic("ELLIPSE", (0, 5, 10, 5, 5, 3, 5, 7), "1.2.3")
    point = Graphic("POINT", (4, 4), "1.2.3")
    circle = Graphic("CIRCLE", (4, 4, 6, 4), "1.2.3")
    long_axis, short_axis = ("103339001", "SCT"), ("103340004", "SCT")
    length = ("410668003", "SCT")
    assert tool_for("1501", None, [Number(length, line)]) == "Length"
    assert tool_for("1501", None, [Number(long_axis, line), Number(short_axis, line)]) \
        == "Bidirectional"
    assert tool_for("1501", None, [Number(short_axis, line), Number(long_axis, line)]) \
        == "Bidirectional"
    assert tool_for("1501", None, [Number(("G-A185", "SRT"), line),
                                   Number(short_axis, line)]) is None  # the caller maps SRT
    assert tool_for("1501", None, [Number(long_axis, line),
                                   Number(short_axis, other_line)]) is None  # two images
    assert tool_for("1501", None, [Number(length, line), Number(length, line)]) is None
    assert tool_for("1501", None, [Number(_AREA, ellipse)]) == "EllipticalROI"
    assert tool_for("1501", None, [Number(length, ellipse)]) is None
    assert tool_for("1501", None, [Number(length, point)]) == "Probe"
    assert tool_for("1410", point, []) == "Probe"
    assert tool_for("1410", point, [Number(length, None)]) is None
    assert tool_for("1410", ellipse, []) is None
    assert tool_for("1501", None, [Number(_AREA, circle)]) is None
    assert tool_for("1501", None, [Number(length, None)]) is None
    assert tool_for("1501", None, []) is None
