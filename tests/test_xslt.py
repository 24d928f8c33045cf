"""``csv2sr xslt``: lxml for XSLT 1.0, SaxonC-HE for 2.0, the table form, and a whole legacy
pipeline (table -> SR XML -> DICOM) compared with ``csv2sr convert``'s SRs."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pydicom
import pytest
from lxml import etree
from typer.testing import CliRunner

from csv2sr.cli import app
from csv2sr.dicom.codes import Codes
from csv2sr.formats.xslt import EXTRA, table_to_xml
from csv2sr.mapping.load import load_profile
from srtree import flatten

runner = CliRunner()
STYLESHEET = Path(__file__).parent / "data" / "ccc2017-to-srxml.xsl"
XSL = 'xmlns:xsl="http://www.w3.org/1999/XSL/Transform"'


def _saxon() -> None:
    pytest.importorskip("saxonche", reason="SaxonC-HE is the xslt2 extra: " + EXTRA)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


MESSAGES_1 = f"""<xsl:stylesheet version="1.0" {XSL}>
  <xsl:param name="who" select="'nobody'"/>
  <xsl:template match="/">
    <xsl:message>hello <xsl:value-of select="$who"/></xsl:message>
    <xsl:if test="//stop"><xsl:message terminate="yes">stop here</xsl:message></xsl:if>
    <out who="{{$who}}" n="{{count(//item)}}"/>
  </xsl:template>
</xsl:stylesheet>"""

RESULTS_2 = f"""<xsl:stylesheet version="2.0" {XSL}>
  <xsl:param name="prefix" select="'item'"/>
  <xsl:template match="/">
    <xsl:message>items: <xsl:value-of select="count(//item)"/></xsl:message>
    <xsl:for-each select="//item">
      <xsl:result-document href="{{$prefix}}-{{position()}}.xml">
        <doc v="{{.}}"/>
      </xsl:result-document>
    </xsl:for-each>
    <index n="{{count(//item)}}"/>
  </xsl:template>
</xsl:stylesheet>"""


def test_xslt1_with_params_and_messages(tmp_path: Path) -> None:
    style = _write(tmp_path / "s1.xsl", MESSAGES_1)
    inputs = [_write(tmp_path / "in" / f"{n}.xml", "<r><item/><item/></r>") for n in "ab"]
    out = tmp_path / "out"
    result = runner.invoke(app, ["xslt", str(style), *map(str, inputs), "-o", str(out),
                                 "--param", "who=Ann & <Bob>", "--json",
                                 str(tmp_path / "f.json")])
    assert result.exit_code == 0, result.output
    for name in "ab":
        doc = etree.parse(str(out / f"{name}.xml")).getroot()
        assert (doc.get("who"), doc.get("n")) == ("Ann & <Bob>", "2")
        assert f"{name}.xml: xsl:message: hello Ann & <Bob>" in result.output
    found = json.loads((tmp_path / "f.json").read_text())
    assert [f["kind"] for f in found] == ["xsl:message", "xsl:message"]
    assert "by lxml" in result.output


def test_terminate_is_an_error_and_writes_nothing(tmp_path: Path) -> None:
    style = _write(tmp_path / "s1.xsl", MESSAGES_1)
    good = _write(tmp_path / "in" / "good.xml", "<r><item/></r>")
    stop = _write(tmp_path / "in" / "stop.xml", "<r><stop/></r>")
    out = tmp_path / "out"
    result = runner.invoke(app, ["xslt", str(style), str(good), str(stop), "-o", str(out)])
    assert result.exit_code == 1
    assert "stop.xml: xsl:message terminate: stop here" in " ".join(result.output.split())
    assert sorted(p.name for p in out.iterdir()) == ["good.xml"]
    assert runner.invoke(app, ["xslt", str(style), str(good), "-o", str(out),
                               "--fail-on-message"]).exit_code == 1


def test_xslt2_refused_by_lxml_naming_the_extra(tmp_path: Path) -> None:
    style = _write(tmp_path / "s2.xsl", RESULTS_2)
    data = _write(tmp_path / "in.xml", "<r><item>1</item></r>")
    result = runner.invoke(app, ["xslt", str(style), str(data), "-o", str(tmp_path / "out"),
                                 "--engine", "lxml"])
    assert result.exit_code == 2
    assert "csv2sr[xslt2]" in result.output and "2.0" in result.output
    assert not (tmp_path / "out").exists()


def test_xslt2_without_saxon_names_the_extra(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "saxonche", None)
    style = _write(tmp_path / "s2.xsl", RESULTS_2)
    data = _write(tmp_path / "in.xml", "<r/>")
    result = runner.invoke(app, ["xslt", str(style), str(data), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "pip install 'csv2sr[xslt2]'" in " ".join(result.output.split())


def test_xslt2_result_documents_stay_in_outdir(tmp_path: Path) -> None:
    _saxon()
    style = _write(tmp_path / "s2.xsl", RESULTS_2)
    data = _write(tmp_path / "in" / "data.xml", "<r><item>x</item><item>y</item></r>")
    out = tmp_path / "out"
    result = runner.invoke(app, ["xslt", str(style), str(data), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["data.xml", "item-1.xml", "item-2.xml"]
    assert etree.parse(str(out / "item-2.xml")).getroot().get("v") == "y"
    assert "data.xml: xsl:message: items: 2" in result.output
    assert "by saxon" in result.output
    escape = runner.invoke(app, ["xslt", str(style), str(data), "-o", str(out / "sub"),
                                 "--param", "prefix=../../evil"])
    assert escape.exit_code == 1
    assert "outside" in escape.output
    assert not list(tmp_path.glob("evil*")) and not list(out.glob("evil*"))


def test_lxml_cannot_write_files(tmp_path: Path) -> None:
    style = _write(tmp_path / "w.xsl", f"""<xsl:stylesheet version="1.0" {XSL}
        xmlns:exsl="http://exslt.org/common" extension-element-prefixes="exsl">
      <xsl:template match="/"><exsl:document href="{tmp_path}/escaped.xml"><x/></exsl:document>
      <out/></xsl:template></xsl:stylesheet>""")
    data = _write(tmp_path / "in.xml", "<r/>")
    result = runner.invoke(app, ["xslt", str(style), str(data), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert not (tmp_path / "escaped.xml").exists()


def test_table_form(tmp_path: Path) -> None:
    table = _write(tmp_path / "t.tsv", 'a\tb c\n1\t"x\ny"\n\n2\t\n')
    root = etree.fromstring(table_to_xml(table, "\t"))
    assert [c.get("name") for c in root.find("columns")] == ["a", "b c"]
    rows = root.findall("row")
    assert [(r.get("line"), r.get("number")) for r in rows] == [("2", "1"), ("5", "2")]
    assert [c.text for c in rows[0]] == ["1", "x\ny"]
    assert [c.text or "" for c in rows[1]] == ["2", ""]
    bad = _write(tmp_path / "bad.csv", "a,b\n1,2,3\n")
    style = _write(tmp_path / "s1.xsl", MESSAGES_1)
    result = runner.invoke(app, ["xslt", str(style), str(bad), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "bad.csv: line 2: 3 cells, the header has 2" in " ".join(result.output.split())


def test_usage_errors(tmp_path: Path) -> None:
    data = _write(tmp_path / "in.xml", "<r/>")
    not_xslt = _write(tmp_path / "n.xsl", "<html/>")
    broken = _write(tmp_path / "b.xsl", f'<xsl:stylesheet version="1.0" {XSL}><xsl:bogus/>'
                    "</xsl:stylesheet>")
    for style, extra in ((not_xslt, []), (broken, []), (_write(tmp_path / "s.xsl", MESSAGES_1),
                                                        ["--param", "novalue"])):
        result = runner.invoke(app, ["xslt", str(style), str(data), "-o",
                                     str(tmp_path / "o"), *extra])
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output


# ---- the legacy pipeline end to end ---------------------------------------------------


def _codes_xml(path: Path) -> Path:
    """The codes the test stylesheet writes, from csv2sr's one code table."""
    root = etree.Element("codes")
    for name, code in vars(Codes).items():
        if not name.startswith("_") and hasattr(code, "scheme_designator"):
            etree.SubElement(root, "code", name=name, cv=code.value,
                             csd=code.scheme_designator, cm=code.meaning)
    site = load_profile("ccc2017").groups[0].finding_site
    assert site is not None
    names = {code.value: name for name, code in vars(Codes).items() if hasattr(code, "value")}
    for cell, organ in site.map.items():  # the profile's anatomy -> Finding Site map
        assert organ is not None
        etree.SubElement(root, "anatomy", cell=cell, organ=names[organ.value])
    path.write_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
    return path


def _pipeline(csv_path: Path, converted: Path, work: Path) -> None:
    """table -> SR XML (XSLT 2.0) -> DICOM, then the same content tree as convert's."""
    codes = _codes_xml(work / "codes.xml")
    xml_dir, dcm_dir = work / "srxml", work / "dcm"
    result = runner.invoke(app, [
        "xslt", str(STYLESHEET), str(csv_path), "-o", str(xml_dir), "-q",
        "--param", f"codes={codes.as_uri()}",
        "--param", f"manifest={(converted / 'manifest.csv').as_uri()}"])
    assert result.exit_code == 0, result.output
    index = etree.parse(str(xml_dir / (csv_path.stem + ".xml"))).getroot()
    result = runner.invoke(app, ["sr-xml", "to-dicom", str(xml_dir / "sr"), "-o", str(dcm_dir),
                                 "-q"])
    assert result.exit_code == 0, result.output
    with (converted / "manifest.csv").open(newline="") as fh:
        manifest = {row["order"]: row for row in csv.DictReader(fh)}
    assert len(index) == len(manifest)
    for entry in index:
        name = Path(entry.get("href")).with_suffix(".dcm").name
        order = str(int(name[len("order-"):-len(".dcm")]))
        ours = pydicom.dcmread(dcm_dir / name)
        theirs = pydicom.dcmread(converted / manifest[order]["path"])
        assert list(flatten(ours)) == list(flatten(theirs)), entry.get("href")
        assert ours.SOPInstanceUID == theirs.SOPInstanceUID


def test_legacy_pipeline_on_the_fixture(sample_csv: Path, tmp_path: Path) -> None:
    _saxon()
    from csv2sr.conversion.batch import convert  # noqa: PLC0415

    converted = tmp_path / "convert"
    assert convert(sample_csv, converted).converted == 12
    _pipeline(sample_csv, converted, tmp_path)


@pytest.mark.slow
def test_legacy_pipeline_on_the_real_csv(real_csv: Path, converted_real: Path,
                                         tmp_path: Path) -> None:
    """All 2,345 rows: one Saxon run writes 2,345 SR XML files, read back in one process."""
    _saxon()
    _pipeline(real_csv, converted_real, tmp_path)
