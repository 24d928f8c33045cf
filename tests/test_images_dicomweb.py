"""ImageIndex.from_dicomweb against a real Orthanc with its DICOMweb plugin, on loopback.

The test starts its own Orthanc (Debian packages ``orthanc`` and ``orthanc-dicomweb``, through
``tests/orthanc.py``) on a free port of 127.0.0.1 with storage in tmp_path, no DICOM port and
no authentication,
uploads the synthetic series through the REST API (``POST /instances``) and checks that
the index read over DICOMweb equals the one read from the folder.  Skipped, with the
reason, when the binary or the plugin is not installed.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from csv2sr.conversion.checks import Record, read_rows
from csv2sr.images.checks import check_row_against_image
from csv2sr.images.index import ImageIndex, ImageIndexError, header_values
from csv2sr.mapping.load import load_profile
from imagegen import SyntheticFixture, synthetic_uid, write_fixture
from orthanc import OrthancServer, free_port, orthanc_factory
from records import order
from srtree import decoded

pytest.importorskip("dicomweb_client", reason="dicomweb-client is not installed (extra: test)")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> SyntheticFixture:
    return write_fixture(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    """A private Orthanc (no DICOM port); stopped when the module's tests are done."""
    with orthanc_factory(tmp_path_factory.mktemp) as make:
        yield make("orthanc", dicom=False)


@pytest.fixture(scope="module")
def loaded(orthanc: OrthancServer, synthetic: SyntheticFixture) -> str:
    """The DICOMweb root of the Orthanc, loaded with the synthetic series."""
    for path in synthetic.image_files:
        answer = orthanc.upload(path.read_bytes())
        assert answer["Status"] == "Success", answer
    return orthanc.dicomweb


def test_dicomweb_index_equals_the_folder_index(loaded: str, synthetic: SyntheticFixture) -> None:
    remote = ImageIndex.from_dicomweb(loaded)
    local = ImageIndex.from_folder(synthetic.image_dir)
    assert len(remote) == len(local) == 7
    assert remote.uids() == local.uids()
    for uid in local.uids():
        assert header_values(remote.get(uid)) == header_values(local.get(uid))  # type: ignore[arg-type]
        assert (remote.source(uid) or "").endswith(f"/instances/{uid}")
    assert remote.files() == [] and remote.skipped == ()
    shipped = pickle.loads(pickle.dumps(remote))  # as sent to conversion workers
    for uid in local.uids():
        assert header_values(shipped.get(uid)) == header_values(local.get(uid))  # type: ignore[arg-type]


def test_dicomweb_index_of_chosen_studies(loaded: str, synthetic: SyntheticFixture) -> None:
    beta = synthetic.collection.series[1]
    absent = synthetic_uid("no such study")
    remote = ImageIndex.from_dicomweb(loaded, study_uids=[beta.study_uid, absent])
    assert remote.uids() == sorted(beta.instance_uids)
    assert [s.source.rsplit("/", 1)[-1] for s in remote.skipped] == [absent]
    assert "404" in remote.skipped[0].reason


def test_rows_check_the_same_against_dicomweb(loaded: str, synthetic: SyntheticFixture) -> None:
    remote = ImageIndex.from_dicomweb(loaded)
    profile = load_profile("ccc2017")
    rows = [r for r in read_rows(synthetic.all_csv, profile) if isinstance(r, Record)]
    columns = {}
    for row in rows:
        _, problems = check_row_against_image(row, remote, path=synthetic.all_csv, spec=profile)
        columns[order(row)] = [p.column for p in problems]
    assert columns == {
        1: [], 2: [], 3: [], 4: [],
        11: ["seriesUID"], 12: ["StudyInstanceUID"], 13: ["patientID"],
        14: ["instanceUID"], 15: ["end_x"], 16: ["length"], 17: ["length"],
    }


def test_unreachable_server_is_a_typed_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/dicom-web"
    with pytest.raises(ImageIndexError, match="cannot list the studies"):
        ImageIndex.from_dicomweb(url, attempts=2)


def _convert(synthetic: SyntheticFixture, out: Path,
             *source: str) -> subprocess.CompletedProcess[str]:
    """``csv2sr convert`` of the synthetic table into ``out`` with ``source`` (--images DIR
    or --images-url URL, and more options)."""
    return subprocess.run(
        [sys.executable, "-m", "csv2sr", "convert", str(synthetic.all_csv), "-o", str(out),
         "--jobs", "1", "-q", *source],
        capture_output=True, text=True, check=False, timeout=600,
    )


def _assert_same_srs(remote: Path, local: Path) -> None:
    """The 4 SRs of the synthetic table, as made from DICOMweb and from the folder."""
    remote_srs = sorted((remote / "sr").rglob("*.dcm"))
    local_srs = sorted((local / "sr").rglob("*.dcm"))
    assert len(remote_srs) == len(local_srs) == 4
    for a, b in zip(remote_srs, local_srs, strict=True):
        # DICOM JSON carries DS as numbers: "-180" in a file may come back as "-180.0"
        assert decoded(pydicom.dcmread(a)) == decoded(pydicom.dcmread(b)), (a, b)


def test_cli_images_url_gives_the_same_srs_as_the_folder(
    loaded: str, synthetic: SyntheticFixture, tmp_path: Path
) -> None:
    remote = _convert(synthetic, tmp_path / "remote", "--images-url", loaded)
    local = _convert(synthetic, tmp_path / "local", "--images", str(synthetic.image_dir))
    assert remote.returncode == local.returncode == 1  # the same 7 rows rejected
    _assert_same_srs(tmp_path / "remote", tmp_path / "local")


def test_a_slow_server_is_retried_and_one_that_never_answers_is_one_error(
    orthanc: OrthancServer, loaded: str, synthetic: SyntheticFixture, tmp_path: Path
) -> None:
    """A real Orthanc behind a proxy that answers late: the metadata request that got no
    answer within --images-timeout is tried again (--images-retries), as is an HTTP 503,
    and the SRs are the folder's; a server that never answers in time stops the index with
    one line naming the server, the study and the timeout, and nothing is written."""
    from netfaults import Fault, fault_proxy  # noqa: PLC0415

    local = _convert(synthetic, tmp_path / "local", "--images", str(synthetic.image_dir))
    with fault_proxy(orthanc.http_port, only="GET") as proxy:
        url = f"{proxy.url}/dicom-web"
        proxy.faults = [Fault(delay=2.5), Fault(503, {"Retry-After": "0"})]
        slow = _convert(synthetic, tmp_path / "slow", "--images-url", url,
                        "--images-timeout", "1")
        assert [action for _, _, action in proxy.seen][:3] == ["delay", "503", "forward"]
        assert slow.returncode == local.returncode == 1, slow.stderr  # the same rows rejected
        assert "Traceback" not in slow.stderr
        _assert_same_srs(tmp_path / "slow", tmp_path / "local")

        proxy.seen.clear()
        proxy.faults = [Fault(delay=2.5)] * 20
        dead = _convert(synthetic, tmp_path / "dead", "--images-url", url,
                        "--images-timeout", "1", "--images-retries", "1")
    assert dead.returncode == 1
    errors = [line for line in dead.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, dead.stderr
    assert errors[0].startswith(f"error: {url}: study ")
    assert errors[0].endswith("no answer within 1 s (2 tries)")
    assert "Traceback" not in dead.stderr
    # only the first study's metadata was asked for (and retried), then the index stopped
    assert len({path for _, path, _ in proxy.seen}) == 1
    assert not (tmp_path / "dead" / "manifest.csv").exists()
