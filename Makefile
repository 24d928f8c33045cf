# csv2sr release pipeline: one annotation CSV -> SRs -> validation -> dumps -> round-trip
# table -> HTML report -> a reproducible zip.  See docs/release.md.
#
#   make                      set up .venv if needed, then release the bundled fixture
#   make release CSV=path/to/CrowdsCureCancer2017Annotations.csv [OUT=...] [JOBS=4] [OHIF=1]
#   make convert|validate|dumps|export|report|zip   one stage (and what it needs)
#   make publish URL=https://host/dicom-web   (or DIMSE=host:port CALLED_AET=NAME) after
#                             a release: send OUT/sr, resumably; never part of `make`
#   make test | fuzz | bench | lint | clean
#
# Every stage leaves OUT/stages/<stage>.done; a stage runs again only when its inputs
# (the CSV, by time or by content, and the code of that stage) are newer, and then does
# only the work of what changed: convert builds only the SRs whose rows changed (an SR still
# as it wrote it is found by OUT/cache/convert.json), and
# validate, dumps, export and the report's pages take what they made of an unchanged SR,
# and the zip the compressed entry of an unchanged file, from OUT/cache (keyed by the
# file's SHA-256, csv2sr's code and the tools' versions; never used for a file it does not
# match), so a rerun's outputs are the bytes a clean build writes.  Exit status 1 of
# convert (rows rejected) and validate (errors found) is recorded in
# OUT/stages/<stage>.status with the stage's wall time, so that the report still shows
# why; `check` then fails the build before anything is packaged.

CSV      = fixtures/ccc2017-sample.csv
NAME     = $(basename $(notdir $(CSV)))
OUT      = build/$(NAME)
DIST     = dist
JOBS     =
PROFILE  = ccc2017
# convert options: OHIF=1 writes SRs that OHIF loads as editable measurements (convert
# --ohif, docs/ohif.md); other convert options (e.g. --codes srt) go in CONVERT_OPTS.
OHIF         =
CONVERT_OPTS =
VENV     = .venv
PYTHON   = $(VENV)/bin/python
VERSION := $(shell sed -n 's/^version *= *"\(.*\)"/\1/p' pyproject.toml)

CSV2SR   = $(PYTHON) -m csv2sr
# publish: a DICOMweb root (URL) or a DICOM server (DIMSE=host:port, AE titles); options
# such as --basic-env VAR, --token-file FILE, --ca-bundle FILE go in PUBLISH_OPTS.
URL          =
DIMSE        =
AET          = CSV2SR
CALLED_AET   = ANY-SCP
PUBLISH_OPTS =
PUBLISH_TO   = $(if $(URL),--url '$(URL)',$(if $(DIMSE),--dimse '$(DIMSE)' --aet '$(AET)' --called-aet '$(CALLED_AET)'))
STAGES   = $(OUT)/stages
# What validate, dumps, export and report made of each SR (by its SHA-256, csv2sr's code and
# the tools' versions), and what the zip compressed each file to: a rerun after a change to
# the CSV redoes only the SRs that changed.
CACHE    = $(OUT)/cache
ZIP      = $(DIST)/$(NAME)-$(VERSION).zip
JOBS_OPT = $(if $(JOBS),--jobs $(JOBS))
CONVERT_ARGS = $(strip $(if $(filter-out 0,$(OHIF)),--ohif) $(CONVERT_OPTS))
PKG      = src/csv2sr

# The code each stage runs (a change rebuilds that stage and what follows it): what every
# command shares (the DICOM knowledge in dicom/, errors, the atomic writer, the profiles
# in mapping/ (code, schema and the built-in TOML files),
# the tool finder, the command line's frame), then each stage's own packages.  A change
# elsewhere (formats/, publish/) rebuilds nothing.
COMMON_SRC   = $(filter %.toml,$(PROFILE)) \
               $(wildcard $(PKG)/__init__.py $(PKG)/__main__.py $(PKG)/errors.py \
                          $(PKG)/atomic.py $(PKG)/tools.py $(PKG)/dicom/*.py \
                          $(PKG)/mapping/*.py $(PKG)/mapping/schema.json $(PKG)/mapping/profiles/*.toml \
                          $(PKG)/cli/__init__.py $(PKG)/cli/app.py $(PKG)/cli/common.py)
CONVERT_SRC  = $(COMMON_SRC) $(wildcard $(PKG)/conversion/*.py $(PKG)/images/index.py \
                                        $(PKG)/images/checks.py $(PKG)/images/enrich.py \
                                        $(PKG)/cli/convert.py)
VALIDATE_SRC = $(COMMON_SRC) $(wildcard $(PKG)/validate/*.py $(PKG)/images/index.py \
                                        $(PKG)/images/cross.py $(PKG)/inputs.py \
                                        $(PKG)/cli/validate.py)
EXPORT_SRC   = $(COMMON_SRC) $(wildcard $(PKG)/export/*.py $(PKG)/inputs.py \
                                        $(PKG)/cli/export.py)
DUMPS_SRC    = $(COMMON_SRC) $(wildcard $(PKG)/release/dumps.py $(PKG)/release/folder.py \
                                        $(PKG)/cli/release.py)
REPORT_SRC   = $(COMMON_SRC) $(wildcard $(PKG)/release/*.py $(PKG)/conversion/read.py \
                                        $(PKG)/cli/release.py xslt/*.xsl)

# A changed CSV rebuilds even when its time did not move (cp -p, touch -d): its SHA-256
# names a stamp file, which does not exist yet for new content.
CSV_SHA   := $(firstword $(shell sha256sum '$(CSV)' 2>/dev/null))
CSV_STAMP  = $(STAGES)/csv-$(CSV_SHA).sha256
# Other convert options (OHIF=1, CONVERT_OPTS) rebuild too: their text names a stamp file.
OPTS_SHA  := $(firstword $(shell printf '%s' '$(CONVERT_ARGS)' | sha256sum))
OPTS_STAMP = $(STAGES)/convert-options-$(OPTS_SHA).sha256

# The virtual environment is made only when PYTHON is its interpreter.
ifeq ($(PYTHON),$(VENV)/bin/python)
SETUP = $(VENV)/.installed $(VENV)/.compiled
endif

# $(call stage,NAME,COMMAND): run COMMAND, record "<exit status> <milliseconds>" in
# $(STAGES)/NAME.status; status 1 is kept for `check`, anything above stops the build.
stage = t0=$$(date +%s%N); $(2); rc=$$?; \
	echo "$$rc $$(( ($$(date +%s%N) - t0) / 1000000 ))" > $(STAGES)/$(1).status; \
	if [ $$rc -eq 1 ]; then echo "$(1): exit status 1, recorded for the report (the release will fail)"; fi; \
	[ $$rc -le 1 ]

.DEFAULT_GOAL := all
.DELETE_ON_ERROR:
.SUFFIXES:
.PHONY: all release convert validate dumps export report check zip publish no-destination \
        test fuzz bench lint clean

all: release

release: $(ZIP)

convert: $(STAGES)/convert.done
validate: $(STAGES)/validate.done
dumps: $(STAGES)/dumps.done
export: $(STAGES)/export.done
report: $(STAGES)/report.done
check: $(STAGES)/check.done
zip: $(ZIP)

$(VENV)/.installed: pyproject.toml
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -e '.[test]'
	touch $@

# The editable install leaves csv2sr's own modules uncompiled, and where the environment
# sets PYTHONDONTWRITEBYTECODE every `csv2sr` process compiled them again (0.15-0.2 s each;
# a release starts a dozen, the tests hundreds): compiled here, again when a source changes.
$(VENV)/.compiled: $(wildcard $(PKG)/*.py $(PKG)/*/*.py $(PKG)/*/*/*.py) | $(VENV)/.installed
	$(VENV)/bin/python -m compileall -q -j 0 $(PKG)
	touch $@

$(CSV_STAMP):
	mkdir -p $(STAGES)
	rm -f $(STAGES)/csv-*.sha256
	echo '$(CSV_SHA)  $(CSV)' > $@

$(OPTS_STAMP):
	mkdir -p $(STAGES)
	rm -f $(STAGES)/convert-options-*.sha256
	echo '$(OPTS_SHA)  $(CONVERT_ARGS)' > $@

$(STAGES)/convert.done: $(CSV) $(CSV_STAMP) $(OPTS_STAMP) $(CONVERT_SRC) | $(SETUP)
	rm -f $(OUT)/manifest.csv $(OUT)/rejected.csv
	$(call stage,convert,$(CSV2SR) convert '$(CSV)' -o $(OUT) --profile $(PROFILE)$(if $(CONVERT_ARGS), $(CONVERT_ARGS)) --cache $(CACHE)/convert.json $(JOBS_OPT) --quiet)
	test -f $(OUT)/manifest.csv
	@find $(OUT)/sr -name '*.dcm' 2>/dev/null | grep -q . || \
	  { echo "convert: no row of $(CSV) was converted, see $(OUT)/rejected.csv" >&2; exit 1; }
	touch $@

$(STAGES)/validate.done: $(STAGES)/convert.done $(VALIDATE_SRC)
	rm -f $(OUT)/validation.json $(OUT)/validation.junit.xml
	$(call stage,validate,$(CSV2SR) validate $(OUT)/sr --report-dir $(OUT)/reports --json $(OUT)/validation.json --junit $(OUT)/validation.junit.xml --relative-to $(OUT) --cache $(CACHE)/validate.json $(JOBS_OPT) --quiet)
	touch $@

$(STAGES)/dumps.done: $(STAGES)/convert.done $(DUMPS_SRC)
	$(call stage,dumps,$(CSV2SR) dumps $(OUT)/sr -o $(OUT)/dumps --cache $(CACHE)/dumps.json $(JOBS_OPT) --quiet)
	touch $@

$(STAGES)/export.done: $(STAGES)/convert.done $(EXPORT_SRC)
	rm -f $(OUT)/export.csv
	$(call stage,export,$(CSV2SR) export $(OUT)/sr -o $(OUT)/export.csv --profile $(PROFILE) --cache $(CACHE)/export.json --quiet)
	touch $@

$(STAGES)/report.done: $(STAGES)/convert.done $(STAGES)/validate.done $(STAGES)/dumps.done \
                       $(STAGES)/export.done $(REPORT_SRC)
	$(CSV2SR) report $(OUT) --csv '$(CSV)' -o $(OUT)/report --name $(NAME) --version $(VERSION) --profile $(PROFILE) --tool 'GNU make=$(MAKE_VERSION)' --cache $(CACHE)/pages.json $(JOBS_OPT) --quiet
	touch $@

$(STAGES)/check.done: $(STAGES)/report.done
	rm -f '$(ZIP)'
	$(CSV2SR) check-release $(OUT) --quiet
	touch $@

$(ZIP): $(STAGES)/check.done
	$(CSV2SR) package $(OUT) -o $@ --root $(NAME)-$(VERSION) --cache $(CACHE)/package.json

# After the release (the zip is made first), never before: the destination is checked at
# once, so a missing URL fails before any stage runs.
publish: $(if $(PUBLISH_TO),$(ZIP),no-destination)
	$(CSV2SR) publish $(OUT)/sr $(PUBLISH_TO) --verify $(PUBLISH_OPTS)

no-destination:
	@echo "publish: give URL=https://host/dicom-web or DIMSE=host:port [CALLED_AET=NAME]" >&2
	@exit 2

# The node packages of tests/js (Cornerstone3D adapters, dcmjs); skipped without npm (the
# tests that need them then skip and say why).
ifneq ($(wildcard tests/js/package-lock.json),)
JS_DEPS = tests/js/node_modules/.package-lock.json

$(JS_DEPS): tests/js/package-lock.json
	if command -v npm >/dev/null 2>&1; then \
	  cd tests/js && npm ci --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the dcmjs corpus tests will be skipped"; fi
endif

# The whole suite on every core (pytest-xdist; the real CSV's conversion and export are
# built once and shared by the workers, tests/conftest.py shared_once).
test: | $(SETUP) $(JS_DEPS)
	$(PYTHON) -m pytest -n auto

# The property-based tests with many more generated inputs than CI runs (minutes).
fuzz: | $(SETUP)
	HYPOTHESIS_PROFILE=fuzz $(PYTHON) -m pytest -m property

# Every benchmark, then issue 16's table of the figures they recorded (each with the load
# average it was measured at: the machine may be shared).
bench: | $(SETUP) $(JS_DEPS)
	for script in benchmarks/bench_*.py; do $(PYTHON) "$$script" || exit 1; done
	$(PYTHON) benchmarks/table.py

lint: | $(SETUP)
	$(PYTHON) -m ruff check src tests benchmarks
	$(PYTHON) -m mypy src

clean:
	test -n '$(OUT)' && test '$(OUT)' != /
	rm -rf -- '$(OUT)' '$(ZIP)'
