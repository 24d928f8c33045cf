"""End to end on the real CCC2017 CSV: every row converts, reads back, and passes dciodvfy
with only the warnings docs/conformance.md accepts."""

from __future__ import annotations

import re
import subprocess
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import highdicom as hd
import pydicom
import pytest

from conftest import ROOT

ACCEPTED_BLOCK = re.compile(r"```accepted-dciodvfy-warnings\n(.*?)```", re.S)


def accepted_warnings() -> list[str]:
    """The warnings docs/conformance.md accepts, one per line (paths and values removed)."""
    text = (ROOT / "docs" / "conformance.md").read_text()
    block = ACCEPTED_BLOCK.search(text)
    assert block, "docs/conformance.md has no accepted-dciodvfy-warnings block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def normalise(line: str) -> str:
    """Keep the attribute keyword, drop its path and the value: one line per kind."""
    line = re.sub(r"</(?:[^>]*/)?([A-Za-z]+)\([0-9a-fA-Fx,]+\)(?:\[\d+\])?>", r"\1", line)
    line = re.sub(r"= <[^>]*>", "", line)
    return re.sub(r"\s+", " ", line).strip()


def _read_back(paths: list[Path]) -> list[str]:
    """Problems reading SRs back with pydicom and with highdicom (one worker's share)."""
    problems = []
    for path in paths:
        ds = pydicom.dcmread(path)
        if ds.SOPClassUID != "1.2.840.10008.5.1.4.1.1.88.22":
            problems.append(f"{path}: SOP class {ds.SOPClassUID}")
        sr = hd.sr.EnhancedSR.from_dataset(ds)
        groups = sr.content.get_image_measurement_groups()
        if len(groups) != 1 or len(groups[0].get_measurements()) != 1:
            problems.append(f"{path}: {len(groups)} measurement groups")
    return problems


@pytest.mark.slow
def test_every_file_reads_back(converted_real: Path) -> None:
    """All 2,345 files parse with pydicom and with highdicom's TID 1500 reader."""
    files = sorted((converted_real / "sr").rglob("*.dcm"))
    assert len(files) == 2345
    shares = [files[i::8] for i in range(8)]
    with ProcessPoolExecutor(2) as pool:
        problems = [p for share in pool.map(_read_back, shares) for p in share]
    assert problems == []


@pytest.mark.slow
def test_dciodvfy_reports_no_error_on_any_file(converted_real: Path, dciodvfy: Path) -> None:
    files = sorted((converted_real / "sr").rglob("*.dcm"))

    def check(path: Path) -> tuple[Path, list[str]]:
        proc = subprocess.run(
            [str(dciodvfy), "-new", str(path)], capture_output=True, text=True,
            stdin=subprocess.DEVNULL, timeout=60, check=False,
        )
        return path, [line for line in proc.stderr.splitlines() if line.strip()]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(check, files))
    assert len(results) == 2345
    accepted = accepted_warnings()
    unexpected: dict[str, str] = {}
    for path, lines in results:
        for line in lines:
            if line.startswith("Error"):
                pytest.fail(f"{path}: {line}")
            if line.startswith("Warning") and normalise(line) not in accepted:
                unexpected.setdefault(normalise(line), str(path))
            elif not line.startswith(("Warning", "Error")):
                assert line == "EnhancedSR", f"{path}: {line}"
    assert unexpected == {}
