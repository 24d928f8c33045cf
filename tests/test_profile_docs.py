"""docs/profiles.md stays true: its key reference is exactly the one generated from the
schema (tests/profiledoc.py), its worked examples are the test profiles the proof tests run
(tests/test_profile_proof.py), and it names every cell type and geometry type."""

from __future__ import annotations

import re

from conftest import ROOT
from profiledoc import BEGIN, END, reference, schema
from profilegen import PROFILES, TEST_PROFILES

PAGE = ROOT / "docs" / "profiles.md"


def _page() -> str:
    return PAGE.read_text(encoding="utf-8")


def test_the_reference_is_generated_from_the_schema() -> None:
    text = _page()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    assert text[start:end] + "\n" == reference(), "run: python tests/profiledoc.py"


def test_every_key_of_the_schema_is_documented() -> None:
    def keys(node: dict[str, object]) -> set[str]:
        found: set[str] = set()
        properties = node.get("properties", {})
        assert isinstance(properties, dict)
        for key, child in properties.items():
            assert child.get("description"), key  # every key says what it is
            found.add(key)
        return found

    data = schema()
    every = keys(data) | {k for d in data["$defs"].values() for k in keys(d)}
    text = _page()
    assert every and all(f"`{k}`" in text or f".{k}`" in text for k in every)


def test_the_worked_examples_are_the_tested_profiles() -> None:
    blocks = re.findall(r"```toml\n(.*?)```", _page(), re.S)
    files = {p.read_text(encoding="utf-8")
             for p in (*PROFILES.glob("*.toml"), PROFILES.parent / "luna16" / "luna16.toml")}
    assert len(blocks) == 5
    assert all(block in files for block in blocks)
    assert all(f"tests/data/profiles/{name}.toml" in _page() for name in TEST_PROFILES)


def test_every_cell_and_geometry_type_is_explained() -> None:
    defs = schema()["$defs"]
    cell_types = defs["cell"]["properties"]["type"]["enum"]
    geometry_types = defs["geometry"]["properties"]["type"]["enum"]
    steps = _page().split("## The round trip")[0]
    for kind in (*cell_types, *geometry_types):
        assert f"`{kind}`" in steps, kind
