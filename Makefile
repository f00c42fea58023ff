# Two commands set everything up on a fresh machine with Python >= 3.10 and make:
#   make grade   grade a submission (default: the stubs in exercises/) -> grading-report/
#   make test    run the kit's whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The pair that installs from local files on the course machines; override on other hosts.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
SUBMISSION ?= exercises
OUT ?= grading-report
STAMP := $(VENV)/.installed
NB_STAMP := $(VENV)/.installed-nbgrader

.PHONY: grade test lint bench stubs release sandbox-tools clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# bubblewrap isolates student code; installed when we are root on Debian, else a loud warning.
sandbox-tools:
	@command -v bwrap >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && (apt-get install -y -qq bubblewrap >/dev/null 2>&1 || \
	      (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq bubblewrap >/dev/null 2>&1)); } \
	  || echo "warning: bubblewrap (bwrap) is not installed: student code will run without isolation"

grade: $(STAMP) sandbox-tools
	$(PY) -m grader grade $(SUBMISSION) --out $(OUT)

# The real nbgrader (the [nbgrader] extra), for tests/test_nbgrader.py and the notebook build.
$(NB_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[nbgrader]'
	touch $(NB_STAMP)

test: $(STAMP) $(NB_STAMP) sandbox-tools lint
	$(PY) -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# Speed, measured side by side (bench/README.md): make bench BENCH="grade selfcheck"
BENCH ?= all
bench: $(STAMP) sandbox-tools
	$(PY) -m bench $(BENCH)

stubs: $(STAMP)
	$(PY) -m grader stubs

release: $(STAMP)
	$(PY) -m grader release $(OUT)

clean:
	rm -rf $(VENV) $(OUT) build *.egg-info
