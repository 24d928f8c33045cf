"""The SR bytes are pinned: every real CCC2017 row, and row 1 in both code modes.

The hashes in ``tests/data/ccc2017-sr-sha256.txt`` belong to one UID schema version
(:data:`csv2sr.dicom.uids.SCHEMA_VERSION`).  A change that alters any SR byte on purpose bumps the
schema version and rewrites the hashes in the same commit; a dependency upgrade or a
restructuring that changes a byte by accident fails here.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from conftest import ROOT
from csv2sr.dicom.uids import SCHEMA_VERSION

PINS = ROOT / "tests" / "data" / "ccc2017-sr-sha256.txt"


def _pins() -> tuple[str, dict[tuple[str, str], str]]:
    text = PINS.read_text(encoding="utf-8")
    schema = re.search(r"^# UID schema version: (\S+)", text, re.M)
    assert schema, f"{PINS} does not name its UID schema version"
    pins: dict[tuple[str, str], str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            mode, digest, relpath = line.split()
            pins[mode, relpath] = digest
    return schema.group(1), pins


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_pins_belong_to_this_schema_version() -> None:
    schema, pins = _pins()
    assert schema == SCHEMA_VERSION, "the SR bytes changed schema: rewrite the pinned hashes"
    assert sum(mode == "sct" for mode, _ in pins) == 2345
    assert ("srt", "sr/TCGA-BP-4343/order-0001.dcm") in pins


def test_every_real_sr_matches_its_pinned_hash(converted_real: Path) -> None:
    _, pins = _pins()
    expected = {relpath: digest for (mode, relpath), digest in pins.items() if mode == "sct"}
    found = {
        path.relative_to(converted_real).as_posix(): _sha256(path)
        for path in (converted_real / "sr").rglob("*.dcm")
    }
    assert found.keys() == expected.keys()
    changed = sorted(p for p in expected if found[p] != expected[p])
    assert changed == [], f"{len(changed)} SRs changed bytes, first {changed[:3]}"


def test_row_one_in_srt_mode_matches_its_pinned_hash(real_csv: Path, tmp_path: Path) -> None:
    from csv2sr.conversion.batch import convert  # noqa: PLC0415  (the package under test, late)

    one_row = tmp_path / "one.csv"
    lines = real_csv.read_text(encoding="utf-8").splitlines(keepends=True)
    one_row.write_text("".join(lines[:2]), encoding="utf-8")
    result = convert(one_row, tmp_path / "out", codes="srt", jobs=1)
    assert result.converted == 1
    _, pins = _pins()
    relpath = "sr/TCGA-BP-4343/order-0001.dcm"
    assert _sha256(tmp_path / "out" / relpath) == pins["srt", relpath]
