"""pixelmed's "SR XML" representation of a DICOM Structured Report, read and written.

``read`` turns the XML into a pydicom dataset exactly as pixelmed's ``toDICOM`` would, but
refuses (:class:`SrXmlError`) every input pixelmed would silently drop, garble or write as an
empty file; ``write`` turns a dataset into the XML pixelmed's ``toXML`` writes, refusing what
the format cannot carry; ``encode`` gives the Part 10 bytes, csv2sr's or pixelmed's
(``pixelmed_compatible``).  The format is specified in ``docs/sr-xml.md``.
"""

from __future__ import annotations

from csv2sr.formats.srxml.errors import SrXmlError

__all__ = ["SrXmlError"]
