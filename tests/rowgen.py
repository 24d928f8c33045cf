"""Synthetic annotation tables for the output tests: the sample fixture's rows, repeated
with a unique ``order`` and ``_id`` per row (and, when asked, more patients), so that a
conversion runs long enough to be interrupted or raced, without the real data."""

from __future__ import annotations

import csv
import random
from pathlib import Path

from conftest import FIXTURES

SAMPLE = FIXTURES / "ccc2017-sample.csv"


def sample_rows() -> tuple[list[str], list[dict[str, str]]]:
    with SAMPLE.open(newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def synthetic_csv(
    path: Path, rows: int, *, patients: int | None = None, seed: int = 0, first_order: int = 1,
) -> Path:
    """Write ``rows`` valid rows to ``path``; ``patients`` distinct patient IDs (default:
    the sample's), orders ``first_order, first_order + 1, ...``."""
    fields, sample = sample_rows()
    chance = random.Random(seed)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fields, lineterminator="\n")
        writer.writeheader()
        for n in range(rows):
            row = dict(sample[n % len(sample)])
            order = first_order + n
            row["order"] = str(order)
            row["_id"] = f"gen{order:028d}"
            if patients is not None:
                row["patientID"] = f"GEN-{chance.randrange(patients):05d}"
            writer.writerow(row)
    return path
