"""What an annotation table looks like: columns, anatomy and the fixed texts of its SRs.

A profile is data, not code: the ``ccc2017`` profile describes the Crowds Cure Cancer 2017
table (TCIA, doi:10.7937/K9/TCIA.2018.OW73VLO2) and the collection each anatomy names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the command line reads the profile names: no pydicom for that
    from pydicom.sr.coding import Code

__all__ = ["PROFILES", "Profile", "get_profile"]


@dataclass(frozen=True)
class Profile:
    """The shape of one kind of annotation table and the constant parts of its SRs."""

    name: str
    columns: tuple[str, ...]
    """Every column, in the order the published table has them (export writes this order)."""
    required: tuple[str, ...]
    """Columns a conversion needs; a file missing any of them is rejected as a whole."""
    anatomy: dict[str, str]
    """``anatomy`` cell -> organ keyword of :data:`csv2sr.dicom.codes.ANATOMY_CODES`."""
    collections: dict[str, str]
    """``anatomy`` cell -> TCIA collection name (for reports)."""
    series_description: str
    series_number: int
    manufacturer: str = "csv2sr"
    not_carried: tuple[str, ...] = field(default=())
    """Columns the SR does not carry (export leaves them empty)."""

    def organ(self, anatomy: str) -> Code:
        """The Finding Site value (PS3.16 TID 1501 row 8) for an ``anatomy`` cell."""
        from csv2sr.dicom.codes import ANATOMY_CODES  # noqa: PLC0415

        return ANATOMY_CODES[self.anatomy[anatomy]]


CCC2017 = Profile(
    name="ccc2017",
    columns=(
        "order", "anatomy", "seriesUID", "patientID", "instanceUID", "length",
        "start_x", "start_y", "end_x", "end_y", "annotator", "radiologist_status", "_id",
        "sliceIndex", "date_unix", "date", "StudyInstanceUID", "StudyDate", "StudyTime",
        "SOPClassUID",
    ),
    required=(
        "order", "anatomy", "seriesUID", "patientID", "instanceUID", "length",
        "start_x", "start_y", "end_x", "end_y", "annotator", "radiologist_status", "_id",
        "date_unix", "StudyInstanceUID", "StudyDate", "StudyTime",
    ),
    anatomy={"Renal": "Kidney", "Ovarian": "Ovary", "Lung": "Lung", "Liver": "Liver"},
    collections={
        "Renal": "TCGA-KIRC", "Ovarian": "TCGA-OV", "Lung": "TCGA-LUAD", "Liver": "TCGA-LIHC",
    },
    series_description="Crowds Cure Cancer Annotation as Measurement Report",
    series_number=4578,
    not_carried=("sliceIndex",),
)

PROFILES: dict[str, Profile] = {CCC2017.name: CCC2017}


def get_profile(name: str) -> Profile:
    """Return the profile called ``name``; ``KeyError`` names the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}") from None
