"""Run one XSLT stylesheet over many inputs in-process: lxml (1.0) or SaxonC-HE (2.0/3.0).

The stylesheet is compiled once.  ``xsl:message`` output is captured as findings (one per
message, ``terminate="yes"`` an error).  A stylesheet whose ``version`` is 2.0 or more is
never run by lxml: libxslt would run it in forwards-compatible mode and silently skip what it
does not know, so it is refused with the name of the extra that brings Saxon
(``pip install 'csv2sr[xslt2]'``).

Neither engine writes a file itself.  The principal result and every ``xsl:result-document``
are returned as bytes with their path relative to the output folder; a result document
whose href leads outside it is an error.  lxml gets no file write and no network access;
Saxon's result documents are captured in memory.

A CSV or TSV input (``.csv``, ``.tsv``, ``.tab``) is first turned into the row/column form
of :func:`table_to_xml`, so that a legacy pipeline table -> XML -> SR XML needs no tool but
csv2sr.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

from lxml import etree

from csv2sr.errors import Csv2srError, SourceError

__all__ = [
    "EXTRA",
    "TABLE_SUFFIXES",
    "Engine",
    "FileRun",
    "Message",
    "StylesheetError",
    "TransformOutput",
    "compile_stylesheet",
    "stylesheet_version",
    "table_to_xml",
    "transform_files",
]

log = logging.getLogger(__name__)

XSL_NS = "http://www.w3.org/1999/XSL/Transform"
EXTRA = "pip install 'csv2sr[xslt2]'"
TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


class StylesheetError(Csv2srError):
    """The stylesheet cannot be used (missing engine, not XSLT, does not compile)."""


@dataclass(frozen=True)
class Message:
    """One ``xsl:message`` of one input."""

    source: Path
    text: str
    terminate: bool = False

    def __str__(self) -> str:
        kind = "xsl:message terminate" if self.terminate else "xsl:message"
        return f"{self.source}: {kind}: {self.text}"


@dataclass
class TransformOutput:
    """The documents one input gave (path relative to OUTDIR -> bytes) and its messages."""

    documents: dict[str, bytes] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)


class Engine(Protocol):
    name: str

    def transform(self, source: Path, document: bytes | None, principal: str
                  ) -> TransformOutput:
        """Transform ``source`` (or ``document``, the XML made of it); ``principal`` names
        its output."""


def stylesheet_version(path: Path) -> str:
    """The XSLT version a stylesheet declares (``version`` or, on a literal result element,
    ``xsl:version``)."""
    try:
        root = etree.parse(str(path), _PARSER).getroot()
    except (OSError, etree.XMLSyntaxError) as exc:
        raise StylesheetError(f"{path}: not a readable XML stylesheet: {exc}") from None
    if etree.QName(root).namespace == XSL_NS:
        version = root.get("version")
    else:
        version = root.get(f"{{{XSL_NS}}}version")
    if not version:
        raise StylesheetError(f"{path}: not an XSLT stylesheet (no version on "
                              f"<{etree.QName(root).localname}>)")
    return version


def _major(version: str) -> float:
    try:
        return float(version)
    except ValueError:
        raise StylesheetError(f"XSLT version {version!r} is not a number") from None


def compile_stylesheet(path: Path, params: dict[str, str], engine: str = "auto") -> Engine:
    """Compile ``path`` once with the engine its version needs (``auto``), or the one asked."""
    version = stylesheet_version(path)
    needs_saxon = _major(version) >= 2.0
    if engine == "lxml" and needs_saxon:
        raise StylesheetError(f"{path}: XSLT {version} cannot run under lxml (XSLT 1.0 only); "
                              f"install SaxonC-HE: {EXTRA}")
    if engine == "saxon" or (engine == "auto" and needs_saxon):
        return _SaxonEngine(path, params, version)
    return _LxmlEngine(path, params)


def _inside(outdir_uri: str, uri: str) -> str:
    """The path of result document ``uri`` relative to OUTDIR, or SourceError."""
    base = Path(unquote(urlparse(outdir_uri).path))
    target = Path(os.path.normpath(unquote(urlparse(uri).path)))
    if not target.is_relative_to(base) or target == base:
        raise SourceError(uri, "xsl:result-document leads outside the output folder")
    return target.relative_to(base).as_posix()


class _LxmlEngine:
    name = "lxml"

    def __init__(self, path: Path, params: dict[str, str]) -> None:
        access = etree.XSLTAccessControl(  # type: ignore[call-arg]  # lxml-stubs lag
            read_file=True, write_file=False, create_dir=False, read_network=False,
            write_network=False)
        try:
            self.xslt = etree.XSLT(etree.parse(str(path), _PARSER), access_control=access)
        except (etree.XSLTParseError, etree.XMLSyntaxError) as exc:
            raise StylesheetError(f"{path}: does not compile: {exc}") from None
        self.params = {name: etree.XSLT.strparam(value) for name, value in params.items()}

    def transform(self, source: Path, document: bytes | None, principal: str
                  ) -> TransformOutput:
        output = TransformOutput()
        try:
            data = source.read_bytes() if document is None else document
            doc = etree.fromstring(data, _PARSER, base_url=source.resolve().as_uri())
        except etree.XMLSyntaxError as exc:
            raise SourceError(source, f"not well-formed XML: {exc.msg}") from None
        except OSError as exc:
            raise SourceError(source, f"cannot read: {exc.strerror or exc}") from None
        try:
            result = self.xslt(doc, **self.params)  # type: ignore[arg-type]
        except etree.XSLTApplyError as exc:
            output.messages = self._messages(source, terminated=True)
            raise _TerminatedError(source, str(exc), output.messages) from None
        output.messages = self._messages(source, terminated=False)
        data = bytes(result)
        if data:
            output.documents[principal] = data
        return output

    def _messages(self, source: Path, terminated: bool) -> list[Message]:
        entries = [e for e in self.xslt.error_log if e.message]  # type: ignore[attr-defined]
        messages = [Message(source, e.message.rstrip("\n")) for e in entries]
        if terminated and messages and messages[-1].text == "Execution terminated":
            messages = messages[:-1]
        if terminated and messages:
            messages[-1] = Message(source, messages[-1].text, terminate=True)
        return messages


class _SaxonEngine:
    name = "saxon"

    def __init__(self, path: Path, params: dict[str, str], version: str) -> None:
        try:
            import saxonche  # noqa: PLC0415  (an optional extra)
        except ImportError:
            raise StylesheetError(f"{path}: XSLT {version} needs SaxonC-HE, which is not "
                                  f"installed: {EXTRA}") from None
        self.saxonche = saxonche
        self.processor = saxonche.PySaxonProcessor(license=False)
        compiler = self.processor.new_xslt30_processor()
        try:
            self.executable = compiler.compile_stylesheet(stylesheet_file=str(path.resolve()))
        except saxonche.PySaxonApiError as exc:
            raise StylesheetError(f"{path}: does not compile: {exc}") from None
        for name, value in params.items():
            self.executable.set_parameter(name, self.processor.make_string_value(value))
        self.executable.set_save_xsl_message(True, None)
        self.executable.set_capture_result_documents(True, False)

    def transform(self, source: Path, document: bytes | None, principal: str
                  ) -> TransformOutput:
        output = TransformOutput()
        base = Path(os.path.normpath(Path.cwd() / "__out__")).as_uri()
        executable = self.executable
        executable.clear_xsl_messages()
        try:
            if document is None:
                node = self.processor.parse_xml(xml_file_name=str(source.resolve()))
            else:
                node = self.processor.parse_xml(xml_text=document.decode("utf-8"))
            executable.set_base_output_uri(f"{base}/{principal}")
            result = executable.transform_to_string(xdm_node=node)
        except self.saxonche.PySaxonApiError as exc:
            output.messages = self._messages(source)
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else "failed"
            terminate = "terminated by xsl:message" in str(exc)
            if terminate and output.messages:
                last = output.messages[-1]
                output.messages[-1] = Message(source, last.text, terminate=True)
            raise _TerminatedError(source, text, output.messages) from None
        except UnicodeDecodeError as exc:
            raise SourceError(source, f"not UTF-8: {exc}") from None
        output.messages = self._messages(source)
        if result:
            output.documents[principal] = result.encode("utf-8")
        for uri, value in (executable.get_result_documents() or {}).items():
            output.documents[_inside(base, uri)] = str(value).encode("utf-8")
        return output

    def _messages(self, source: Path) -> list[Message]:
        found = self.executable.get_xsl_messages()
        if found is None:
            return []
        return [Message(source, _node_text(item)) for item in _items(found)]


def _items(value: Any) -> Iterable[Any]:
    size = getattr(value, "size", 1)
    return [value.item_at(i) for i in range(size)] if size != 1 or hasattr(
        value, "item_at") else [value]


def _node_text(item: Any) -> str:
    text = getattr(item, "string_value", None)
    return str(text if text is not None else item).strip()


class _TerminatedError(SourceError):
    """The transformation stopped (a dynamic error or ``xsl:message terminate="yes"``)."""

    def __init__(self, source: Path, message: str, messages: list[Message]) -> None:
        super().__init__(source, f"transformation failed: {message}")
        self.messages = messages


def table_to_xml(path: Path, delimiter: str) -> bytes:
    """A CSV/TSV table in csv2sr's row/column XML form (``docs/sr-xml.md``)::

        <table source="annotations.csv" delimiter=",">
          <columns><column index="1" name="id"/>...</columns>
          <row line="2" number="1"><column name="id">5b6e...</column>...</row>
        </table>

    Values are the cells' text exactly (no trimming, no type); ``line`` is the line of the
    file where the row begins; a row of another width than the header is an error.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(path, f"cannot read as UTF-8 text: {exc}") from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise SourceError(path, "empty table (no header line)") from None
    except csv.Error as exc:
        raise SourceError(path, f"line 1: {exc}") from None
    root = etree.Element("table", source=path.name, delimiter=delimiter)
    columns = etree.SubElement(root, "columns")
    for index, name in enumerate(header, 1):
        etree.SubElement(columns, "column", index=str(index), name=name)
    number = 0
    line = reader.line_num + 1
    try:
        for cells in reader:
            if cells:
                number += 1
                _row(root, path, header, cells, line, number)
            line = reader.line_num + 1
    except csv.Error as exc:
        raise SourceError(path, f"line {line}: {exc}") from None
    except ValueError as exc:
        raise SourceError(path, f"line {line}: {exc}") from None
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _row(root: etree._Element, path: Path, header: list[str], cells: list[str], line: int,
         number: int) -> None:
    if len(cells) != len(header):
        raise SourceError(path, f"line {line}: {len(cells)} cells, the header has "
                          f"{len(header)}")
    row = etree.SubElement(root, "row", line=str(line), number=str(number))
    for name, value in zip(header, cells, strict=True):
        cell = etree.SubElement(row, "column", name=name)
        cell.text = value


@dataclass
class FileRun:
    """What one input gave: the files written, its messages, or why it wrote nothing."""

    source: Path
    written: list[Path] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    error: str | None = None


def transform_files(engine: Engine, plan: list[tuple[Path, Path]], outdir: Path
                    ) -> Iterator[FileRun]:
    """Transform every (input, principal output) of ``plan``; write each input's documents
    atomically only when the whole input succeeded; no file is written twice in a run."""
    from csv2sr.atomic import write_atomic  # noqa: PLC0415  (keeps import light)

    claimed: dict[Path, Path] = {}
    for source, principal in plan:
        run = FileRun(source)
        try:
            document = _as_xml(source)
            output = engine.transform(source, document, principal.name)
            run.messages = output.messages
            targets = _targets(outdir, principal, output, claimed, source)
            for target, data in targets:
                write_atomic(target, data, root=outdir, durable=False)
                claimed[target] = source
                run.written.append(target)
        except _TerminatedError as exc:
            run.messages, run.error = exc.messages, str(exc)
        except SourceError as exc:
            run.error = str(exc)
        except OSError as exc:
            run.error = f"{source}: {exc.strerror or exc}"
        except Exception as exc:  # an engine failure no check foresaw: the batch goes on
            log.debug("%s", source, exc_info=True)
            run.error = f"{source}: transformation failed: {exc!r} (-vv shows where)"
        yield run


def _as_xml(source: Path) -> bytes | None:
    delimiter = TABLE_SUFFIXES.get(source.suffix.lower())
    return None if delimiter is None else table_to_xml(source, delimiter)


def _targets(outdir: Path, principal: Path, output: TransformOutput,
             claimed: dict[Path, Path], source: Path) -> list[tuple[Path, bytes]]:
    base = principal.parent
    targets = []
    for name, data in output.documents.items():
        target = principal if name == principal.name else base / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.parent.resolve().is_relative_to(outdir.resolve()):
            raise SourceError(source, f"{target} is outside {outdir}; nothing written")
        if target in claimed:
            raise SourceError(source, f"{target} was already written by {claimed[target]} "
                              "in this run; nothing written")
        targets.append((target, data))
    return targets
