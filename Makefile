# Two commands set everything up on a fresh machine with Python >= 3.10 and make:
#   make grade   grade a submission (default: the stubs in exercises/) -> grading-report/
#   make test    run the kit's test suite (CI adds make test-ci: containers, wheel, classes)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The grading lock: exact hypothesis, pytest, numpy, torch and torchvision, so this machine
# draws the same cases as the Gradescope image and the Dask workers (README, "Grading a class").
LOCK := constraints/grading.txt
# torch and torchvision: by default the lock's pair (torch==2.14.1 torchvision==0.29.1, which
# installs from local files on the course machines). On another host, override it (make
# TORCH_SPEC="torch torchvision"): the lock still pins the rest, and each report names the torch
# that drew its cases (results.json: extra_data.versions), so a batch there regrades.
TORCH_SPEC ?= $(shell grep -E '^(torch|torchvision)==' $(LOCK))
# the lock less torch and torchvision (those are TORCH_SPEC's)
LOCK_REST := $(VENV)/grading-lock-rest.txt
SUBMISSION ?= exercises
OUT ?= grading-report
STAMP := $(VENV)/.installed
NB_STAMP := $(VENV)/.installed-nbgrader
# Linting needs no torch: ruff and mypy live in a small venv of their own (constraints/lint.txt)
LINT_VENV ?= .venv-lint
LINT_STAMP := $(LINT_VENV)/.installed

.PHONY: grade test test-ci test-fast lint bench stubs release sandbox-tools clean

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	grep -v -E '^(torch|torchvision)==' $(LOCK) > $(LOCK_REST)
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -c $(LOCK_REST) -e '.[dev]'
	touch $(STAMP)

# Isolation (README, "Sandbox tiers"): bubblewrap where namespaces work, else each worker
# confines itself (uid + Landlock + seccomp, which needs libseccomp). As root on Debian this
# installs both, and lets other users traverse the folders above the Python installation and
# this virtual environment, so a worker that drops to an unprivileged uid can still start
# Python (pyenv lives in /root; a clone may sit in a private temporary folder).
sandbox-tools: $(STAMP)
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  dpkg -s bubblewrap libseccomp2 >/dev/null 2>&1 || \
	  apt-get install -y -qq bubblewrap libseccomp2 >/dev/null 2>&1 || \
	  (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq bubblewrap libseccomp2 >/dev/null 2>&1) || \
	  echo "warning: could not install bubblewrap and libseccomp2"; \
	  $(PY) -c "import os, pathlib, site, sys; [os.chmod(p, p.stat().st_mode | 0o001) for f in (os.path.realpath(sys.executable), sys.prefix, *site.getsitepackages()) for p in pathlib.Path(f).resolve().parents if not p.stat().st_mode & 0o001]"; \
	fi
	@$(PY) -c "from grader.sandbox.tiers import detect; t = detect(); print(t.describe()); [print(g) for g in t.gaps()]"

grade: $(STAMP) sandbox-tools
	$(PY) -m grader grade $(SUBMISSION) --out $(OUT)

# The real nbgrader (the [nbgrader] extra), for tests/test_nbgrader.py and the notebook build.
$(NB_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -c $(LOCK_REST) -e '.[nbgrader]'
	touch $(NB_STAMP)

# The bare machine covers the bubblewrap tier. What only CI needs is marked `ci` and runs in
# make test-ci, which .ci/run adds after make test: the attack and bad-input suites again inside
# the Docker-like harness (tests/test_container.py: the tier without namespaces, and
# Gradescope's boxes), the wheel build, whole classes on Dask and real nbgrader courses. A tier
# this machine is expected to give but cannot fails the run instead of skipping.
TEST_TIERS ?= bubblewrap
PYTEST := KIT_TEST_TIERS=$(TEST_TIERS) KIT_REQUIRE_TIERS=$(TEST_TIERS) \
  $(PY) -m pytest -q -p no:cacheprovider
test: $(STAMP) $(NB_STAMP) sandbox-tools lint
	$(PYTEST) -m "not ci" --durations=15

test-ci: $(STAMP) $(NB_STAMP) sandbox-tools
	$(PYTEST) -m ci --durations=15

# The inner loop: everything not marked slow (no corpus, attacks, containers, classes, nbgrader
# courses or wheel builds), in about a minute.
test-fast: $(STAMP) $(NB_STAMP) sandbox-tools lint
	$(PYTEST) -m "not slow and not ci" --durations=10

$(LINT_STAMP): constraints/lint.txt
	$(PYTHON) -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/python -m pip install --quiet -r constraints/lint.txt
	touch $(LINT_STAMP)

# mypy's basic mode: pyproject.toml, [tool.mypy]
lint: $(LINT_STAMP)
	$(LINT_VENV)/bin/ruff check .
	$(LINT_VENV)/bin/mypy grader data_utils

# Speed, measured side by side (bench/README.md): make bench BENCH="grade selfcheck"
BENCH ?= all
bench: $(STAMP) sandbox-tools
	$(PY) -m bench $(BENCH)

stubs: $(STAMP)
	$(PY) -m grader stubs

release: $(STAMP)
	$(PY) -m grader release $(OUT)

clean:
	rm -rf $(VENV) $(LINT_VENV) $(OUT) build *.egg-info
