"""Seeded generators of tables for a profile: many rows, values near the edges of each
cell type, the identity columns drawn from a hierarchy of patients, studies, series and
images (so that grouping per image, series or study has several rows to group).

The values are canonical where export writes them canonically (integers without a sign
or leading zeros, DT of 14 digits), so that "the round trip gives the table back" can be
checked cell for cell; coordinates are compared as 32-bit floats.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
import string
from dataclasses import dataclass
from pathlib import Path

from conftest import ROOT
from csv2sr.mapping.inverse import spreadsheet_serial
from csv2sr.mapping.load import load_profile
from csv2sr.mapping.spec import CellSpec, Spec

PROFILES = ROOT / "tests" / "data" / "profiles"
TEST_PROFILES = sorted(p.stem for p in PROFILES.glob("*.toml"))
"""Every test profile (tests/data/profiles/*.toml)."""

_SAFE = string.ascii_letters + string.digits + "._-"
_TEXT = _SAFE + " (),;:'#&!?@"


def profile_path(name: str) -> Path:
    return PROFILES / f"{name}.toml"


def test_profile(name: str) -> Spec:
    return load_profile(profile_path(name))


@dataclass(frozen=True)
class _Image:
    patient: str
    study: str
    series: str
    instance: str


def _uid(chance: random.Random) -> str:
    return f"2.25.{chance.getrandbits(126) | 1 << 120}"


def _images(chance: random.Random, count: int) -> list[_Image]:
    images: list[_Image] = []
    for p in range(max(2, count // 6)):
        patient = f"P-{p:03d}" if chance.random() < 0.8 else "PAT" + "x" * chance.randrange(20, 40)
        for _ in range(chance.randint(1, 2)):
            study = _uid(chance)
            for _ in range(chance.randint(1, 2)):
                series = _uid(chance)
                images.extend(_Image(patient, study, series, _uid(chance))
                              for _ in range(chance.randint(1, 3)))
    return images


def _text(chance: random.Random, cell: CellSpec, limit: int) -> str:
    """Text that fits every VR the column lands in (no '^', '=' or '\\\\'), with edges."""
    alphabet = _SAFE if "PN" in cell.landing or "PN_PART" in cell.landing else _TEXT
    size = chance.choice([1, 2, 8, 16, chance.randint(1, limit), limit])
    text = "".join(chance.choice(alphabet) for _ in range(size)).strip()
    return text or "x"


def _ds(chance: random.Random, low: float) -> str:
    value = chance.uniform(max(low, 0.01), 500.0)
    form = chance.randrange(5)
    if form == 0:
        return str(max(1, round(value)))  # never 0: a DS column may be greater_than = 0
    if form == 1:
        return f"{value:.2f}"
    if form == 2:
        return f"{value:.10g}"[:16].rstrip(".")
    if form == 3:
        return f"{value:.3e}"
    return repr(value)[:16].rstrip(".")


def _coordinate(chance: random.Random, cell: CellSpec, high: float) -> str:
    low = cell.minimum if cell.minimum is not None else 0.0
    top = cell.maximum if cell.maximum is not None else high
    if cell.greater_than is not None:
        low = max(low, cell.greater_than + (top - cell.greater_than) / 1000)
    edge = chance.random()
    if edge < 0.05:
        return repr(float(low)) if cell.greater_than is None else repr(low)
    if edge < 0.1:
        return str(int(top)) if float(top).is_integer() else repr(top)
    value = chance.uniform(low, top)
    text = chance.choice([repr(value), f"{value:.1f}", f"{value:.4f}", str(round(value, 2))])
    if cell.greater_than is not None and float(text) <= cell.greater_than:
        return repr(value)
    return text


def _points(chance: random.Random) -> str:
    count = chance.randint(3, 8)
    cx, cy = chance.uniform(50, 450), chance.uniform(50, 450)
    coordinates = []
    for k in range(count):
        angle = 6.283185307 * k / count
        radius = chance.uniform(5, 40)
        import math  # noqa: PLC0415

        coordinates += [f"{cx + radius * math.cos(angle):.3f}",
                        f"{cy + radius * math.sin(angle):.3f}"]
    return " ".join(coordinates)


def _value(chance: random.Random, spec: Spec, column: str, n: int, image: _Image,
           roles: dict[str, str]) -> str:
    cell = spec.cells[column]
    role = roles.get(column)
    if role is not None:
        return {"patient_id": image.patient, "patient_name": image.patient,
                "study_uid": image.study, "series_uid": image.series,
                "sop_instance_uid": image.instance}[role]
    kind = cell.type
    if cell.optional and chance.random() < 0.2:
        return ""
    if kind == "IS":
        return str(n + 1) if cell.unique else str(chance.randint(1, 2**31 - 1))
    if kind == "UI":
        return _uid(chance)
    if kind == "DS":
        return _ds(chance, cell.greater_than or 0.0)
    if kind == "DA":
        day = dt.date(1000, 1, 1) + dt.timedelta(days=chance.randrange(730000))
        return day.strftime("%Y%m%d")
    if kind == "TM":
        return f"{chance.randrange(24):02d}{chance.randrange(60):02d}{chance.randrange(60):02d}"
    if kind == "DT":
        moment = dt.datetime(1990, 1, 1) + dt.timedelta(seconds=chance.randrange(10**9))
        return moment.strftime("%Y%m%d%H%M%S")
    if kind == "unix_time":
        return str(chance.choice([0, 32503679999, chance.randrange(32503679999)]))
    if kind == "enum":
        return chance.choice(cell.values)
    if kind == "coordinate":
        return _coordinate(chance, cell, 512.0)
    if kind == "points":
        return _points(chance)
    if kind == "text":
        if cell.unique:
            return f"{_text(chance, cell, 20)}-{n:05d}"
        limit = 63 if "PN_PART" in cell.landing else 64
        return _text(chance, cell, limit)
    return chance.choice(["", "whatever", "17"])  # ignore / spreadsheet_day


def _roles(spec: Spec) -> dict[str, str]:
    roles: dict[str, str] = {}
    ident = spec.identity
    for role in ("patient_id", "patient_name", "study_uid", "series_uid", "sop_instance_uid"):
        source = getattr(ident, role)
        if source is not None and source.column:
            roles.setdefault(source.column, role)
    return roles


def generate_rows(spec: Spec, count: int, seed: int) -> list[dict[str, str]]:
    """``count`` valid rows for ``spec`` (same seed, same rows)."""
    chance = random.Random(seed)
    images = _images(chance, count)
    roles = _roles(spec)
    class_column = spec.identity.sop_class_uid
    observer = {c for s in (spec.observer.name, spec.observer.login) if s is not None
                for c in s.columns}
    grouped = spec.document.per != "row" and not spec.document.by_observer
    rows = []
    for n in range(count):
        image = chance.choice(images)
        row = {c: _value(chance, spec, c, n, image, roles) for c in spec.columns}
        if grouped:  # one observer per SR: drawn from the image's series
            same = random.Random(f"{seed}{image.study}{image.series}")
            for column in observer:
                row[column] = _value(same, spec, column, n, image, roles)
        if class_column is not None and class_column.column:
            # one SOP class per image (rows of one image cannot disagree on it)
            row[class_column.column] = random.Random(image.instance).choice([
                "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4",
                "1.2.840.10008.5.1.4.1.1.2.1"])
        for column, cell in spec.cells.items():
            if cell.type == "spreadsheet_day" and row.get(cell.of):
                row[column] = spreadsheet_serial(row[cell.of])  # what export recomputes
        rows.append(row)
    return rows


def write_table(path: Path, spec: Spec, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding=spec.input.encoding, newline="") as handle:
        writer = csv.DictWriter(handle, spec.columns, delimiter=spec.input.delimiter,
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_table(path: Path, spec: Spec) -> list[dict[str, str]]:
    with path.open(encoding=spec.input.encoding, newline="") as handle:
        return list(csv.DictReader(handle, delimiter=spec.input.delimiter))
