"""One output file per input file in one folder: names, collisions, atomic writes.

Used by the file-to-file commands (``sr-xml``, ``json``, ``xslt``).  A file argument gives
``OUTDIR/<name><suffix>``; a folder argument is searched recursively for its pattern and
keeps the relative path below it, so that no two inputs can share an output and nothing is
ever written outside OUTDIR.  Outputs are written by :func:`csv2sr.atomic.write_atomic`
inside OUTDIR (a temporary file and a rename, never through a link inside it).  A file
that fails is reported and leaves no output (an old output of the same name is removed);
the other files go on.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from csv2sr.atomic import write_atomic
from csv2sr.errors import Csv2srError, SourceError, held_interrupts, leave_interrupts
from csv2sr.pools import stopping

if TYPE_CHECKING:
    from pydicom import Dataset

log = logging.getLogger(__name__)

__all__ = ["FileOutcome", "OutputCollisionError", "plan_outputs", "read_dicom_file",
           "run_files"]


class OutputCollisionError(Csv2srError):
    """Two inputs would write the same output file (a usage error)."""


@dataclass(frozen=True)
class FileOutcome:
    """What became of one input: its output, or the one-line reason it has none."""

    source: Path
    output: Path
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def read_dicom_file(path: Path) -> Dataset:
    """``pydicom.dcmread(path)``, its failures as one SourceError naming the file."""
    from pydicom import dcmread  # noqa: PLC0415  (keeps the CLI's start light)
    from pydicom.errors import InvalidDicomError  # noqa: PLC0415

    try:
        return dcmread(path)
    except (InvalidDicomError, EOFError, ValueError, KeyError) as exc:
        raise SourceError(path, f"not a readable DICOM file: {exc}") from None
    except OSError as exc:
        raise SourceError(path, f"cannot read: {exc.strerror or exc}") from None


def _found(folder: Path, patterns: tuple[str, ...]) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink() and any(
                path.match(pattern) for pattern in patterns):
            yield path


def plan_outputs(inputs: Iterable[Path], outdir: Path, suffix: str,
                 patterns: tuple[str, ...]) -> list[tuple[Path, Path]]:
    """(input, output) for every input file; OutputCollisionError if two outputs coincide."""
    plan: list[tuple[Path, Path]] = []
    for given in inputs:
        if given.is_dir():
            for path in _found(given, patterns):
                plan.append((path, outdir / path.relative_to(given).with_suffix(suffix)))
        else:
            plan.append((given, outdir / (given.stem + suffix)))
    seen: dict[Path, Path] = {}
    for source, output in plan:
        if output in seen:
            raise OutputCollisionError(f"{seen[output]} and {source} would both write {output}")
        seen[output] = source
    return plan


def _convert_one(convert: Callable[[Path], bytes], source: Path) -> bytes | str:
    """The output bytes of ``source``, or the one-line reason there are none."""
    try:
        return convert(source)
    except SourceError as exc:
        return str(exc)
    except OSError as exc:
        return f"{source}: {exc.strerror or exc}"
    except Exception as exc:  # a bug or an input no check foresaw: the batch goes on
        log.debug("%s", source, exc_info=True)
        return f"{source}: cannot convert: {exc!r} (-vv shows where)"


def _results(plan: list[tuple[Path, Path]], convert: Callable[[Path], bytes], jobs: int
             ) -> Iterator[bytes | str]:
    sources = [source for source, _ in plan]
    if jobs <= 1 or len(plan) < 4 * jobs:
        yield from (_convert_one(convert, source) for source in sources)
        return
    context = multiprocessing.get_context("forkserver" if os.name == "posix" else "spawn")
    with stopping(ProcessPoolExecutor(max_workers=jobs, mp_context=context,
                                      initializer=leave_interrupts)) as pool:
        with held_interrupts():  # map submits every input, starting the workers
            results = pool.map(functools.partial(_convert_one, convert), sources,
                               chunksize=max(1, min(64, len(plan) // (8 * jobs))))
        yield from results


def run_files(plan: list[tuple[Path, Path]], outdir: Path, convert: Callable[[Path], bytes],
              progress: Callable[[int], None] | None = None, jobs: int = 1
              ) -> list[FileOutcome]:
    """Convert each input (in ``jobs`` processes; ``convert`` must then be picklable), and
    write its output atomically from this process, or remove a stale one on error."""
    outcomes = []
    for done, ((source, output), result) in enumerate(
            zip(plan, _results(plan, convert, jobs), strict=True), 1):
        try:
            if isinstance(result, str):
                raise SourceError(source, result.removeprefix(f"{source}: "))
            _check_inside(outdir, output)
            write_atomic(output, result, root=outdir, durable=False)
            outcomes.append(FileOutcome(source, output))
        except SourceError as exc:
            _remove_stale(output)
            outcomes.append(FileOutcome(source, output, str(exc)))
        except OSError as exc:
            _remove_stale(output)
            outcomes.append(FileOutcome(source, output, f"{output}: {exc.strerror or exc}"))
        if progress is not None:
            progress(done)
    return outcomes


def _check_inside(outdir: Path, output: Path) -> None:
    """Refuse an output whose folder is (through a link) outside OUTDIR."""
    output.parent.mkdir(parents=True, exist_ok=True)
    if not output.parent.resolve().is_relative_to(outdir.resolve()):
        raise SourceError(output, f"its folder leads outside {outdir}; not written")


def _remove_stale(output: Path) -> None:
    with contextlib.suppress(OSError):
        if output.is_file() or output.is_symlink():
            output.unlink()
