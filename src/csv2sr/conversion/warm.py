"""What the fork server imports before it forks conversion workers.

``convert`` starts its workers from a fork server (:mod:`multiprocessing.forkserver`):
without a preload every worker imports pydicom, highdicom and numpy again (0.5-0.6 s of CPU
each) before its first row.  Imported once in the fork server, these modules are in every
worker it forks, at no cost.  This module imports the worker's code and nothing else; a
failure to import it (the server ignores it) only makes the workers slower.

It also reads the tables highdicom reads from its JSON files on its first SR (the IOD,
module and attribute maps of the standard, 22 MB of JSON, about 0.3 s of CPU per process,
:func:`highdicom._standard_utils.get_module_attribute_map`): each worker then has them,
shared with the server, instead of parsing them again.  They are highdicom's own cached
values, so nothing the workers write changes; if highdicom no longer has them, nothing is
read here and each worker reads them itself, as before.

The server then ends without the interpreter's teardown (:func:`_leave_at_once`): freeing
those tables took 0.55 s of CPU after the command had ended, while the server held the
command's standard output and error open (a caller reading them waited that long).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
from types import FrameType

import csv2sr.conversion.batch  # the workers' code and all it imports
import csv2sr.conversion.build  # highdicom's builders: batch imports them late
import csv2sr.conversion.compose  # the fast path's composer, imported late
import csv2sr.images.enrich  # noqa: F401  (the image headers' evidence, imported late)

log = logging.getLogger(__name__)

_HIGHDICOM_TABLES = ("get_sop_class_iod_map", "get_iod_module_map", "get_module_attribute_map")
"""highdicom's cached loaders of its JSON tables (highdicom/_standard_utils.py)."""


def _read_highdicom_tables() -> None:
    try:
        from highdicom import _standard_utils as tables  # noqa: PLC0415
    except ImportError:
        return
    for name in _HIGHDICOM_TABLES:
        loader = getattr(tables, name, None)
        try:
            if callable(loader):
                loader()
        except Exception as exc:  # only an optimisation: the workers read it themselves
            log.debug("highdicom table %s not read ahead: %s", name, exc)


_read_highdicom_tables()


def _in_fork_server() -> bool:
    """This import is the fork server's preload: ``multiprocessing.forkserver.main`` is
    running below it (not a command's import, nor a worker's)."""
    server = sys.modules.get("multiprocessing.forkserver")
    code = getattr(getattr(server, "main", None), "__code__", None)
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code is code:
            return True
        frame = frame.f_back
    return False


def _leave_at_once() -> None:
    """The fork server's end (its parent has gone): its streams flushed, then
    ``os._exit``.  Its workers never run this: each ends with ``os._exit`` after its
    task (:mod:`multiprocessing.forkserver`)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
    os._exit(0)


if _in_fork_server():
    atexit.register(_leave_at_once)
