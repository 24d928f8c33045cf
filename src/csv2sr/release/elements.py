"""XML elements whose values cannot break the document (the summary's and the SR pages').

Every element and attribute of ``summary.xml`` and of an SR page's XML is made here, so
that a control character anywhere in the data reaches the report, shown visibly, instead
of stopping it (XML 1.0 section 2.2).
"""

from __future__ import annotations

import re

from lxml import etree

__all__ = [
    "display_text",
    "element",
    "set_attr",
    "sub",
    "xml_text",
]


def display_text(value: object) -> str:
    """A DICOM value as display text (multi-valued joined with backslash, PS3.5 6.4)."""
    if value is None:
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(display_text(v) for v in value)  # type: ignore[attr-defined]
    return str(value)


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
"""What XML 1.0 cannot hold (section 2.2, Char: C0 controls but tab, LF and CR; U+FFFE,
U+FFFF, lone surrogates) and what it discourages (DEL, C1 controls)."""


def xml_text(value: str) -> str:
    """``value`` with every character XML 1.0 cannot hold shown visibly as ``\\xNN`` or
    ``\\uNNNN``, so that a control character anywhere in the data reaches the report
    (and shows where it is) instead of stopping it."""

    def visible(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _NOT_XML.sub(visible, value)


def _attrs(attrib: dict[str, str] | None, extra: dict[str, str]) -> dict[str, str]:
    return {key: xml_text(str(value)) for key, value in {**(attrib or {}), **extra}.items()}


def sub(
    parent: etree._Element, tag: str, attrib: dict[str, str] | None = None, /, *,
    text: str | None = None, **extra: str,
) -> etree._Element:
    """``etree.SubElement`` whose attribute values and text pass :func:`xml_text`: every
    element of the summary and of an SR's XML is made here, so no value can break them."""
    node = etree.SubElement(parent, tag, _attrs(attrib, extra))
    if text is not None:
        node.text = xml_text(text)
    return node


def element(tag: str, attrib: dict[str, str] | None = None, /, **extra: str) -> etree._Element:
    """``etree.Element`` with :func:`xml_text` values (see :func:`sub`)."""
    return etree.Element(tag, _attrs(attrib, extra))


def set_attr(node: etree._Element, key: str, value: str) -> None:
    """``node.set`` with an :func:`xml_text` value (see :func:`sub`)."""
    node.set(key, xml_text(value))
