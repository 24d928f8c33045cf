"""Publish a release: send its DICOM files to a DICOMweb server (STOW-RS) or a DICOM
server (C-STORE), resumably, and check that they arrived (QIDO-RS or C-FIND).

::

    plan = make_plan([Path("out/sr")], root=Path("out"))
    destination = DicomwebDestination(DicomwebTarget("http://pacs/dicom-web"))
    result = publish(plan, destination, Path("out/publish") / destination.journal_name())

Modules, by role: :mod:`~csv2sr.publish.plan` (the files and their UIDs),
:mod:`~csv2sr.publish.journal` (what the server confirmed, appended atomically),
:mod:`~csv2sr.publish.dicomweb` and :mod:`~csv2sr.publish.dimse` (the two protocols),
:mod:`~csv2sr.publish.destination` (parsing and naming a destination),
:mod:`~csv2sr.publish.retry` (bounded backoff, Retry-After), :mod:`~csv2sr.publish.auth`
(credentials from the environment or a file), :mod:`~csv2sr.publish.status` (status
codes), :mod:`~csv2sr.publish.run` (the run itself).  pydicom, requests, dicomweb-client
and pynetdicom are imported only when a run needs them.
"""

from __future__ import annotations

from csv2sr.publish.auth import Credentials, load_credentials
from csv2sr.publish.destination import (
    DicomwebDestination,
    DimseDestination,
    check_aet,
    parse_host_port,
    parse_url,
)
from csv2sr.publish.dicomweb import DicomwebTarget
from csv2sr.publish.dimse import DimseTarget
from csv2sr.publish.journal import Journal, Record, iter_records, read_journal
from csv2sr.publish.model import (
    DestinationError,
    Item,
    Outcome,
    PublishResult,
    PublishUsageError,
    Status,
)
from csv2sr.publish.plan import Plan, find_release_root, make_plan
from csv2sr.publish.run import Options, dry_run, publish

__all__ = [
    "Credentials",
    "DestinationError",
    "DicomwebDestination",
    "DicomwebTarget",
    "DimseDestination",
    "DimseTarget",
    "Item",
    "Journal",
    "Options",
    "Outcome",
    "Plan",
    "PublishResult",
    "PublishUsageError",
    "Record",
    "Status",
    "check_aet",
    "dry_run",
    "find_release_root",
    "iter_records",
    "load_credentials",
    "make_plan",
    "parse_host_port",
    "parse_url",
    "publish",
    "read_journal",
]
