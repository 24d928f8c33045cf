"""``csv2sr profile list|show|check`` and a broken profile everywhere one is taken: exit 2
and one line naming the file, the key (a TOML path) and what is wrong, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from conftest import ROOT
from csv2sr.mapping.load import _builtin_dir, _validate_schema, builtin_profiles, load_profile
from profilegen import TEST_PROFILES, profile_path

CCC2017_TOML = ROOT / "src" / "csv2sr" / "mapping" / "profiles" / "ccc2017.toml"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "csv2sr", *args], capture_output=True,
                          text=True, timeout=300, check=False)


def test_list_names_every_builtin_with_its_title() -> None:
    proc = run("profile", "list")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(builtin_profiles())
    assert lines[0].split(None, 1)[1].startswith("Crowds Cure Cancer 2017")


def test_show_prints_the_toml_a_curator_can_start_from(tmp_path: Path) -> None:
    proc = run("profile", "show", "ccc2017")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == CCC2017_TOML.read_text(encoding="utf-8")
    copy = tmp_path / "mine.toml"
    copy.write_text(proc.stdout, encoding="utf-8")
    assert load_profile(copy).columns == load_profile("ccc2017").columns


@pytest.mark.parametrize("name", TEST_PROFILES)
def test_check_accepts_every_test_profile(name: str) -> None:
    proc = run("profile", "check", str(profile_path(name)))
    assert proc.returncode == 0, proc.stderr
    spec = load_profile(profile_path(name))
    assert f"profile {name!r} is valid: {len(spec.columns)} columns" in proc.stdout
    assert proc.stdout.count("\n") == 1


def _broken(tmp_path: Path, source: Path, old: str, new: str) -> Path:
    text = source.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "broken.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


BOXES = profile_path("boxes-xywh")
BROKEN = [
    (BOXES, 'unit = "mm2"', "unit = 5", "groups[0].measurements[0].unit",
     "5 is not of type 'string'"),
    (BOXES, 'concept = "SCT:42798000"', 'concept = "SCT:999999999"',
     "groups[0].measurements[0].concept", "not in pydicom's concept dictionary"),
    (CCC2017_TOML, 'value = "length"', 'value = "lenght"',
     "groups[0].measurements[0].value", "did you mean 'length'?"),
    (BOXES, "pixel_spacing = [0.75, 0.75]", "", "groups[0].measurements[0].value.derive",
     "needs the pixel spacing"),
    (BOXES, 'width = "width", height = "height" }', 'width = "width" }', "groups[0].region",
     "a box needs height"),
    (BOXES, 'template = "1410"', 'template = "1499"', "groups[0].template", "'1499'"),
    (BOXES, "[observer]", "[observer]\ncolour = 1", "observer", "unknown key colour"),
    (BOXES, 'name = "boxes-xywh"', 'name = "boxes-xywh', "", "not TOML"),
]


@pytest.mark.parametrize(("source", "old", "new", "key", "problem"), BROKEN,
                         ids=[b[3] or "toml" for b in BROKEN])
def test_check_a_broken_profile_exit_2_one_line(tmp_path: Path, source: Path, old: str,
                                                new: str, key: str, problem: str) -> None:
    path = _broken(tmp_path, source, old, new)
    proc = run("profile", "check", str(path))
    assert proc.returncode == 2
    assert proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"profile error: {path}: {key}")
    assert problem in line
    assert "Traceback" not in proc.stderr


def test_every_command_taking_a_profile_refuses_a_broken_one(tmp_path: Path) -> None:
    path = _broken(tmp_path, BOXES, 'unit = "mm2"', "unit = 5")
    table = tmp_path / "t.csv"
    table.write_text("a\n1\n", encoding="utf-8")
    for args in (("convert", str(table), "-o", str(tmp_path / "out"), "--profile", str(path)),
                 ("export", str(tmp_path), "-o", str(tmp_path / "back.csv"), "-p", str(path)),
                 ("profile", "show", str(path))):
        proc = run(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        (line,) = proc.stderr.splitlines()
        assert f"{path}: groups[0].measurements[0].unit" in line
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "back.csv").exists()


def test_an_unknown_name_lists_the_builtins() -> None:
    proc = run("profile", "show", "nosuch")
    assert proc.returncode == 2
    assert "nosuch: unknown profile; built-in: ccc2017" in proc.stderr


def test_the_builtin_toml_is_plain_toml() -> None:
    data = tomllib.loads(CCC2017_TOML.read_text(encoding="utf-8"))
    assert data["name"] == "ccc2017" and data["format"] == 1


@pytest.mark.parametrize("name", builtin_profiles())
def test_every_builtin_profile_is_valid_by_the_schema(name: str) -> None:
    """A built-in profile is not checked by the JSON schema when it is loaded by name
    (mapping.load._builtin): this is where it is."""
    path = _builtin_dir() / f"{name}.toml"
    _validate_schema(tomllib.loads(path.read_text(encoding="utf-8")), Path(path))
    broken = tomllib.loads(path.read_text(encoding="utf-8")) | {"no_such_key": 1}
    with pytest.raises(Exception, match="no_such_key"):
        _validate_schema(broken, Path(path))
    assert load_profile(name) == load_profile(Path(path))  # by name: the same profile
