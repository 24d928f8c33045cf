"""References: every IMAGE/COMPOSITE/WAVEFORM in the tree is in the evidence, and back.

PS3.3 C.17.2.3: the Current Requested Procedure Evidence Sequence and the Pertinent Other
Evidence Sequence together list every instance the content tree references (Type 1C).
The other way round is not required: evidence may list instances no content item names
(highdicom records every source image; dcmqi every image of its library), so an
unreferenced evidence instance is no finding (issue 13).
"""

from __future__ import annotations

from pydicom import Dataset

from csv2sr.validate.access import sequence, text
from csv2sr.validate.content import Node, iter_nodes
from csv2sr.validate.findings import Finding, Severity, Source

__all__ = ["check_references"]

_EVIDENCE = (
    ("CurrentRequestedProcedureEvidenceSequence", "(0040,a375)"),
    ("PertinentOtherEvidenceSequence", "(0040,a385)"),
)


def _evidence(ds: Dataset) -> dict[str, str]:
    """Referenced SOP Instance UID -> attribute path of its evidence entry."""
    out: dict[str, str] = {}
    for keyword, tag in _EVIDENCE:
        for i, study in enumerate(sequence(ds, keyword) or [], start=1):
            for j, series in enumerate(sequence(study, "ReferencedSeriesSequence") or [], 1):
                for k, sop in enumerate(sequence(series, "ReferencedSOPSequence") or [], 1):
                    uid = text(sop, "ReferencedSOPInstanceUID")
                    if uid:
                        out.setdefault(uid, f"/{keyword}{tag}[{i}]/ReferencedSeriesSequence"
                                            f"(0008,1115)[{j}]/ReferencedSOPSequence"
                                            f"(0008,1199)[{k}]")
    return out


def check_references(ds: Dataset, root: Node) -> list[Finding]:
    evidence = _evidence(ds)
    findings: list[Finding] = []
    for node in iter_nodes(root):
        if node.value_type not in ("IMAGE", "COMPOSITE", "WAVEFORM"):
            continue
        refs = sequence(node.ds, "ReferencedSOPSequence") or []
        uid = text(refs[0], "ReferencedSOPInstanceUID") if refs else None
        if not uid:
            continue
        if uid not in evidence:
            findings.append(Finding(
                Severity.ERROR, Source.CSV2SR, node.id,
                node.path + "/ReferencedSOPSequence(0008,1199)[1]",
                f"{node.value_type} references {uid}, which is in neither the Current "
                "Requested Procedure Evidence nor the Pertinent Other Evidence Sequence "
                "(PS3.3 C.17.2.3)"))
    return findings
