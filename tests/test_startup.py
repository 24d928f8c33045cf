"""Start-up: the command line loads no heavy library before a command needs it.

``csv2sr --help`` (and a make rule per file) must not pay for pandas, highdicom, numpy,
pydicom, lxml or the network libraries: each command imports what it runs.  Checked in a
fresh interpreter, where ``sys.modules`` shows what the import really loaded (the times are
measured by ``benchmarks/bench_startup.py``, never asserted here).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES

HEAVY = ("pandas", "highdicom", "numpy", "pydicom", "lxml", "requests", "pynetdicom",
         "saxonche", "pyarrow", "dicomweb_client")

_LOADED = """
import json, sys
{body}
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""

_RUN_MAIN = """
from csv2sr.cli import main
sys.argv = ["csv2sr", *{args!r}]
try:
    main()
except SystemExit:
    pass
"""


def _heavy_loaded(body: str, heavy: tuple[str, ...] = HEAVY) -> list[str]:
    """Which of the modules ``heavy`` running ``body`` in a fresh interpreter loaded."""
    code = _LOADED.format(body=body, heavy=heavy)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def test_importing_the_command_line_loads_no_heavy_library() -> None:
    assert _heavy_loaded("import csv2sr.cli") == []


def test_importing_the_package_loads_no_heavy_library() -> None:
    assert _heavy_loaded("import csv2sr, csv2sr.__main__") == []


@pytest.mark.parametrize("args", [
    ["--help"],
    ["convert", "--help"],
    ["validate", "--help"],
    ["export", "--help"],
    ["dumps", "--help"],
    ["report", "--help"],
    ["check-release", "--help"],
    ["package", "--help"],
    ["publish", "--help"],
    ["xslt", "--help"],
    ["sr-xml", "to-dicom", "--help"],
    ["json", "to-json", "--help"],
])
def test_help_loads_no_heavy_library(args: list[str]) -> None:
    assert _heavy_loaded(_RUN_MAIN.format(args=args)) == []


def test_a_command_still_loads_what_it_runs() -> None:
    """The check above can fail: a command that needs pydicom loads it."""
    body = _RUN_MAIN.format(args=["validate", "/nonexistent-csv2sr-input"])
    assert "pydicom" in _heavy_loaded(body)


_RENDERERS = ("typer.rich_utils", "rich.markdown", "markdown_it", "pygments")
"""What typer's Rich help imports (a tenth of a second, more than the rest of ``--help``):
the help is click's plain text (``rich_markup_mode=None``, csv2sr.cli.app)."""


@pytest.mark.parametrize("args", [["--help"], ["convert", "--help"], ["validate", "--help"]])
def test_help_loads_no_rich_renderer(args: list[str]) -> None:
    assert _heavy_loaded(_RUN_MAIN.format(args=args), _RENDERERS) == []


@pytest.mark.parametrize("command", ["convert", "validate", "export", "publish", "report"])
def test_help_is_wrapped_to_the_terminal_width(command: str) -> None:
    """Paragraphs are rewrapped to COLUMNS, not cut where the docstring's lines end (Rich
    kept those breaks and left one word on a line of its own)."""
    done = subprocess.run([sys.executable, "-m", "csv2sr", command, "--help"],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "COLUMNS": "80"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    lines = lines[:next(i for i, line in enumerate(lines)
                        if line in ("Arguments:", "Options:"))]  # the description
    # a line of the description (two spaces in) that stops well short of the width while
    # its paragraph goes on: a break kept from the docstring
    cut = [line for line, after in itertools.pairwise(lines)
           if line.startswith("  ") and not line.startswith("   ") and len(line) < 50
           and after.startswith("  ") and not after.startswith("   ")]
    assert cut == []


def test_a_row_of_a_cached_shape_is_built_without_highdicoms_tables(tmp_path: Path) -> None:
    """With the ``--cache`` of an earlier run (its templates), converting a changed row
    renders it from the stored template: highdicom never reads its 22 MB of standard
    tables, which it does for the first SR it builds (checked in the process that ran the
    command, with and without the cache)."""
    sample = FIXTURES / "ccc2017-sample.csv"
    cache = tmp_path / "cache.json"
    earlier = subprocess.run([sys.executable, "-m", "csv2sr", "convert", str(sample), "-o",
                              str(tmp_path / "earlier"), "-q", "--cache", str(cache)],
                             capture_output=True, text=True, timeout=300, check=False)
    assert earlier.returncode == 0, earlier.stderr
    header, *rows = sample.read_text().splitlines(keepends=True)
    one = tmp_path / "one.csv"
    one.write_text(header + rows[3])
    for options, expected in (([], 1), (["--cache", str(cache)], 0)):
        out = tmp_path / f"out-{expected}"
        body = _RUN_MAIN.format(args=["convert", str(one), "-o", str(out), "-q", *options])
        body += ("\nfrom highdicom._standard_utils import get_module_attribute_map as m"
                 "\nprint(json.dumps(m.cache_info().currsize))")
        done = subprocess.run([sys.executable, "-c", "import json, sys\n" + body],
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout.strip().splitlines()[-1]) == expected
        assert len(list((out / "sr").rglob("*.dcm"))) == 1
