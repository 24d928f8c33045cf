"""The package as pip installs it: the stylesheets (top-level ``xslt/``) are package data.

A wheel is built from the project and installed into a fresh virtual environment in
tmp_path (csv2sr alone, ``--no-deps``; its dependencies come from the test environment's
site-packages by a path entry, without that environment's editable csv2sr).  From there,
away from the source tree, ``csv2sr convert`` and ``csv2sr report`` run and render the
report with the stylesheets the wheel carries.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from lxml import html

from conftest import FIXTURES, ROOT

SRC = ROOT / "src"


def test_every_package_of_src_is_listed_in_pyproject() -> None:
    """The package list is explicit (the xslt/ mapping needs it): a new package under src/
    that is not listed would be missing from the wheel."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {
        ".".join(init.parent.relative_to(SRC).parts) for init in SRC.rglob("__init__.py")
        if "egg-info" not in str(init)
    }
    assert set(config["packages"]) == on_disk | {"csv2sr.xslt"}
    assert config["package-dir"]["csv2sr.xslt"] == "xslt"


def test_an_editable_install_finds_the_stylesheets_in_the_project() -> None:
    import csv2sr  # noqa: PLC0415
    from csv2sr.release.render import XSLT_DIR  # noqa: PLC0415

    if not Path(csv2sr.__file__).resolve().is_relative_to(SRC):
        pytest.skip("csv2sr is not installed from this checkout (pip install -e .)")
    assert XSLT_DIR.resolve() == (ROOT / "xslt").resolve()
    assert (XSLT_DIR / "release-report.xsl").is_file() and (XSLT_DIR / "sr.xsl").is_file()


def _run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(command, cwd=cwd, env={**clean, **env}, capture_output=True,
                          text=True, timeout=900, check=False)
    assert done.returncode == 0, (command, done.stdout[-3000:], done.stderr[-3000:])
    return done


def test_a_wheel_carries_the_stylesheets_and_renders_the_report(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels),
          str(ROOT)], cwd=tmp_path)
    (wheel,) = wheels.glob("csv2sr-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {"csv2sr/xslt/release-report.xsl", "csv2sr/xslt/sr.xsl"} <= names
    assert not any(n.startswith(("xslt/", "share/")) or ".data/" in n for n in names)

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
          str(wheel)], cwd=tmp_path)
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(_run([str(python), "-c", purelib], cwd=tmp_path).stdout.strip())
    # the dependencies, from this environment (a path entry does not run its .pth files,
    # so this environment's editable csv2sr stays out)
    (site / "test-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")

    where = _run([str(python), "-c", "import csv2sr; from csv2sr.release.render import "
                  "XSLT_DIR; print(csv2sr.__file__); print(XSLT_DIR)"], cwd=tmp_path)
    package, stylesheets = (Path(line) for line in where.stdout.split())
    assert package.is_relative_to(site) and stylesheets == site / "csv2sr" / "xslt"

    out = tmp_path / "out"
    csv2sr = str(venv / "bin" / "csv2sr")
    _run([csv2sr, "convert", str(FIXTURES / "ccc2017-sample.csv"), "-o", str(out), "--jobs",
          "1", "--quiet"], cwd=tmp_path)
    _run([csv2sr, "report", str(out), "--csv", str(FIXTURES / "ccc2017-sample.csv"),
          "--name", "wheel", "--version", "1", "--jobs", "1", "--quiet"], cwd=tmp_path)
    index = html.fromstring((out / "report" / "index.html").read_bytes())
    assert index.get_element_by_id("count-rows").text_content() == "12"
    pages = sorted((out / "report" / "sr").rglob("*.html"))
    assert len(pages) == 12
    assert "CONTAINER" in pages[0].read_text(encoding="utf-8")
