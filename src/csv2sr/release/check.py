"""``check-release``: why a release must not be published.

Besides the stages, rejected rows and validation errors: ``sr/`` must hold exactly the
manifest's converted rows (no stale or foreign file, no link, none missing), the
validation must cover exactly them, and ``export.csv`` must have rows of exactly them.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from csv2sr.release.folder import (
    STAGES,
    converted_paths,
    read_csv_rows,
    read_stages,
    read_validation,
    release_relpath,
    severity_name,
)

__all__ = [
    "check_release",
]

log = logging.getLogger(__name__)


def _tree(out: Path, folder: str) -> tuple[set[str], list[str]]:
    """(regular files, other entries described) under ``out/folder``, links not followed."""
    files: set[str] = set()
    others: list[str] = []
    top = out / folder
    if not top.exists() and not top.is_symlink():
        return files, others
    if not stat.S_ISDIR(top.lstat().st_mode):
        return files, [f"{folder} (not a folder)"]
    for root, dirs, names in os.walk(top):
        for name in sorted(names + [d for d in dirs if Path(root, d).is_symlink()]):
            path = Path(root, name)
            rel = path.relative_to(out).as_posix()
            mode = path.lstat().st_mode
            if stat.S_ISREG(mode):
                files.add(rel)
            else:
                kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
                others.append(f"{rel} ({kind})")
    return files, others


def _sr_invariant(out: Path, paths: list[str]) -> list[str]:
    """``sr/`` holds exactly the manifest's converted rows: every problem with that."""
    files, others = _tree(out, "sr")
    listed = set(paths)
    problems = [f"convert: {entry} in sr/ is not an SR csv2sr wrote" for entry in others]
    extra = sorted(files - listed)
    missing = sorted(listed - files)
    if extra:
        problems.append(
            f"convert: {len(extra)} file(s) in sr/ are not converted rows of the manifest "
            f"(stale or foreign, e.g. {extra[0]}): rerun convert, which removes stale SRs"
        )
    if missing:
        problems.append(
            f"convert: {len(missing)} SR(s) the manifest lists are missing (e.g. {missing[0]})"
        )
    return problems


def _validation_coverage(out: Path, paths: list[str], validation: dict[str, object]) -> list[str]:
    files = validation.get("files")
    if not isinstance(files, list):
        return ["validate: validation.json has no list of files"]
    validated = {
        release_relpath(out, str(entry.get("path", "")))
        for entry in files if isinstance(entry, dict)
    }
    listed = set(paths)
    problems = []
    if validated - listed:
        problems.append(f"validate: {len(validated - listed)} validated file(s) are not in the "
                        f"manifest (e.g. {sorted(validated - listed)[0]})")
    if listed - validated:
        problems.append(f"validate: {len(listed - validated)} converted SR(s) were not "
                        f"validated (e.g. {sorted(listed - validated)[0]})")
    return problems


_MANIFEST_FIXED = frozenset({"line", "path", "sop_instance_uid", "series_instance_uid",
                             "tracking_uid", "status", "message"})


def _export_coverage(out: Path, manifest: list[dict[str, str]]) -> list[str]:
    """``export.csv`` has rows of exactly the manifest's converted SRs: by SOP Instance UID
    in the generic table, by the profile's unique columns (the manifest names rows by them)
    in a profile's table."""
    export = out / "export.csv"
    if not export.is_file():
        return []
    rows = read_csv_rows(export)
    converted = [m for m in manifest if m.get("status") == "converted"]
    header = set(rows[0]) if rows else set()
    named = [c for c in (manifest[0] if manifest else {}) if c not in _MANIFEST_FIXED]
    if "sop_instance_uid" in header or not rows:
        columns = ["sop_instance_uid"]
    else:
        columns = [c for c in named if c in header]
    if not columns:
        return []
    exported = {tuple(r.get(c, "") for c in columns) for r in rows}
    expected = {tuple(m.get(c, "") for c in columns) for m in converted}
    label = " / ".join(columns)
    problems = []
    if exported - expected:
        problems.append(f"export: export.csv has rows of {len(exported - expected)} "
                        f"SR(s) that are not converted rows of the manifest "
                        f"(e.g. {label} {' / '.join(sorted(exported - expected)[0])})")
    if expected - exported:
        problems.append(f"export: {len(expected - exported)} converted row(s) are "
                        f"missing from export.csv (e.g. {label} "
                        f"{' / '.join(sorted(expected - exported)[0])})")
    return problems


def check_release(out: Path) -> list[str]:
    """Why the release in ``out`` must not be published (empty: it may be).

    Besides the stages, rejected rows and validation errors: ``sr/`` must hold exactly the
    manifest's converted rows (no stale or foreign file, no link, none missing), the
    validation must cover exactly them, and ``export.csv`` must have rows of exactly them.
    """
    problems: list[str] = []
    stages = read_stages(out / "stages")
    for stage in STAGES:
        if stage not in stages:
            problems.append(f"{stage}: the stage has not run (no {out / 'stages' / stage}.status)")
    manifest = read_csv_rows(out / "manifest.csv")
    paths = converted_paths(manifest, out)
    problems.extend(_sr_invariant(out, paths))
    problems.extend(_export_coverage(out, manifest))
    rejected = sum(1 for m in manifest if m.get("status") != "converted")
    if rejected:
        problems.append(f"convert: {rejected} of {len(manifest)} rows rejected "
                        f"(see {out / 'rejected.csv'})")
    elif not manifest:
        problems.append(f"convert: no rows in {out / 'manifest.csv'}")
    validation = read_validation(out / "validation.json")
    if validation is not None:
        problems.extend(_validation_coverage(out, paths, validation))
    errors = sum(
        1
        for entry in (validation or {}).get("files", [])
        for finding in entry.get("findings", [])
        if severity_name(finding.get("severity")) == "error"
    )
    if errors:
        problems.append(f"validate: {errors} errors (see {out / 'validation.json'})")
    for stage, (status, _) in sorted(stages.items()):
        if status != 0 and not (stage == "convert" and rejected) and not (
            stage == "validate" and errors
        ):
            problems.append(f"{stage}: exit status {status}")
    return problems
