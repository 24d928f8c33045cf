# A legacy table -> XSLT -> SR XML -> DICOM pipeline with pixelmed's Java step replaced.
# See docs/sr-xml.md.  Run from the csv2sr source tree:
#
#   make -f docs/examples/legacy-srxml.mk CSV=annotations.csv STYLESHEET=to-srxml.xsl \
#        PARAMS='--param codes=file:///.../codes.xml' OUT=build/legacy
#
# The stylesheet is the curator's own (XSLT 2.0 here: csv2sr runs it with SaxonC-HE, the
# xslt2 extra); it reads the table in csv2sr's row/column XML form and writes one SR XML
# file per row under sr/ with xsl:result-document.

CSV        ?= annotations.csv
STYLESHEET ?= to-srxml.xsl
PARAMS     ?=
OUT        ?= build/legacy
CSV2SR     ?= .venv/bin/csv2sr

.PHONY: all
.DELETE_ON_ERROR:

all: $(OUT)/validated.stamp

# 1. table -> SR XML: one Saxon compile, every row (was: saxon -s:table.xml -xsl:...)
$(OUT)/srxml.stamp: $(CSV) $(STYLESHEET)
	rm -rf $(OUT)/srxml
	$(CSV2SR) xslt $(STYLESHEET) $(CSV) -o $(OUT)/srxml $(PARAMS) --quiet
	touch $@

# 2. SR XML -> DICOM, every file in one process.  It was, once per file (a JVM each):
#    java -cp /usr/share/java/pixelmed.jar \
#         com.pixelmed.dicom.XMLRepresentationOfStructuredReportObjectFactory \
#         toDICOM $$f > $(OUT)/dcm/$$(basename $$f .xml).dcm
#    --pixelmed-compatible gives pixelmed's bytes; leave it out for csv2sr's file meta.
$(OUT)/dcm.stamp: $(OUT)/srxml.stamp
	rm -rf $(OUT)/dcm
	$(CSV2SR) sr-xml to-dicom $(OUT)/srxml/sr -o $(OUT)/dcm --pixelmed-compatible --quiet
	touch $@

# 3. what the Java pipeline never had: csv2sr's own checks and dciodvfy on every file
$(OUT)/validated.stamp: $(OUT)/dcm.stamp
	$(CSV2SR) validate $(OUT)/dcm --json $(OUT)/validation.json --quiet
	touch $@
