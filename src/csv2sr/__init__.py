"""csv2sr: tables of image annotations <-> DICOM TID 1500 Measurement Reports."""

from __future__ import annotations

__version__ = "0.1.0"
