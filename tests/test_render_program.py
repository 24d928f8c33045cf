"""The fast path's compiled renderer (``fastpath.Program``) gives the bytes of the part
tree it was compiled from, written out by the definition of explicit VR little endian
encoding (PS3.5 7.1.2: tag, VR, 16- or 32-bit length, value; 7.5: a sequence or item is
its header, a 32-bit length and its children), for generated trees of constant bytes,
slots, runs and nested sequences and items (hypothesis)."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from csv2sr.conversion.fastpath import ITEM, Node, Part, Raw, Slot, collapse, render_parts

_SLOT_HEADERS = (b"\x08\x00\x18\x00UI", b"\x40\xa1\x60\xa1UT\x00\x00")


def _expected(parts: list[Part], values: dict[str, object]) -> bytes:
    """The tree's bytes, by the definition (not by the code under test)."""
    out = b""
    for part in parts:
        if isinstance(part, bytes):
            out += part
        elif isinstance(part, Raw):
            value = values[part.name]
            assert isinstance(value, bytes)
            out += value
        elif isinstance(part, Slot):
            data = str(values[part.name]).encode("ascii")
            if len(data) % 2:
                data += part.pad
            size = struct.pack("<I", len(data)) if part.long else struct.pack("<H", len(data))
            out += part.header + size + data
        else:
            body = _expected(part.children, values)
            out += part.header + struct.pack("<I", len(body)) + body
    return out


names = st.sampled_from(["a", "b", "c", "d"])
leaves = st.one_of(
    st.binary(min_size=1, max_size=12),
    st.builds(lambda k, n: Slot(_SLOT_HEADERS[k], k == 1, n, b"\x00" if k == 0 else b" "),
              st.integers(0, 1), names),
    st.builds(lambda n: Raw(f"run-{n}"), names),
)


def _node(children: list[Part]) -> Part:
    return Node(ITEM, children)


trees = st.recursive(
    leaves,
    lambda inner: st.builds(
        lambda items: Node(b"\x40\xa7\x30\xa7SQ\x00\x00", [_node(i) for i in items]),
        st.lists(st.lists(inner, max_size=4), max_size=3)),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(trees, max_size=6),
       texts=st.dictionaries(names, st.text("0123456789.", max_size=9), min_size=4),
       runs=st.dictionaries(names, st.binary(max_size=20), min_size=4))
def test_program_renders_the_tree(parts: list[Part], texts: dict[str, str],
                                  runs: dict[str, bytes]) -> None:
    values: dict[str, object] = {**texts, **{f"run-{k}": v for k, v in runs.items()}}
    for tree in (parts, collapse(parts)):
        out: list[bytes] = []
        length = render_parts(tree, values, out)  # type: ignore[arg-type]
        assert b"".join(out) == _expected(parts, values)
        assert length == len(b"".join(out))
        again: list[bytes] = []  # a compiled program is reused: the same bytes again
        render_parts(tree, values, again)  # type: ignore[arg-type]
        assert again == out
