"""The XSLT step of the release report (libxslt through lxml, XSLT 1.0).

The stylesheets are the top-level ``xslt/`` folder of the project, installed as the package
data ``csv2sr.xslt`` (:data:`XSLT_DIR`): ``release-report.xsl`` turns ``summary.xml`` into
``index.html``, ``sr.xsl`` one SR's XML into its page.
"""

from __future__ import annotations

import importlib.resources
import logging
from functools import lru_cache
from pathlib import Path

from lxml import etree

from csv2sr.errors import SourceError

__all__ = [
    "XSLT_DIR",
    "ReportRenderError",
    "load_stylesheet",
    "render",
]

log = logging.getLogger(__name__)


def _xslt_dir() -> Path:
    """The package data ``csv2sr.xslt`` (the project's top-level ``xslt/`` folder, which a
    wheel carries inside ``csv2sr/`` and an editable install maps), found through
    ``importlib.resources`` wherever csv2sr is installed; when csv2sr runs from a source
    tree that was never installed (``PYTHONPATH=src``), the tree's own ``xslt/``."""
    try:
        found = importlib.resources.files("csv2sr.xslt")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[3] / "xslt"
    # installed as files (wheels are unpacked), so the resource is a real folder
    return Path(str(found))


XSLT_DIR = _xslt_dir()
"""Where the stylesheets are (see :func:`_xslt_dir`)."""


class ReportRenderError(SourceError):
    """A file cannot be rendered: not DICOM, not an SR, or a stylesheet failed."""


@lru_cache(maxsize=8)
def load_stylesheet(path: Path) -> etree.XSLT:
    """Parse an XSLT 1.0 stylesheet once per process (libxslt through lxml)."""
    try:
        return etree.XSLT(etree.parse(str(path)))
    except (OSError, etree.XMLSyntaxError, etree.XSLTParseError) as exc:
        raise ReportRenderError(path, f"stylesheet cannot be loaded: {exc}") from exc


def render(xml: etree._Element, stylesheet: Path, **params: str) -> bytes:
    """Apply ``stylesheet`` to ``xml`` with string parameters; return the serialized HTML."""
    transform = load_stylesheet(stylesheet)
    quoted = {k: etree.XSLT.strparam(v) for k, v in params.items()}
    try:
        result = transform(xml, **quoted)  # type: ignore[arg-type]
    except etree.XSLTApplyError as exc:
        raise ReportRenderError(stylesheet, f"transformation failed: {exc}") from exc
    return bytes(result)
