"""The XSLT step of the release report (libxslt through lxml, XSLT 1.0).

The stylesheets are the top-level ``xslt/`` folder of the project, installed as the package
data ``csv2sr.xslt`` (:data:`XSLT_DIR`): ``release-report.xsl`` turns ``summary.xml`` into
``index.html``, ``sr.xsl`` one SR's XML into its page.
"""

from __future__ import annotations

import logging
import sys
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
    """``xslt/`` next to ``src/`` (a checkout, an editable install), else the copy a wheel
    installs under ``<prefix>/share/csv2sr/xslt`` (pyproject ``data-files``)."""
    source = Path(__file__).resolve().parents[3] / "xslt"
    installed = Path(sys.prefix) / "share" / "csv2sr" / "xslt"
    return source if source.is_dir() or not installed.is_dir() else installed


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
