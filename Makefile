# Two commands do everything on a fresh machine (see README.md):
#   make book   create the environment if needed, then build the website into _build/html
#   make test   create the environment if needed, then run the unit tests, every notebook (nbval,
#               strict) and the linter
# The environment is a virtual environment in .venv, made once and remade when requirements change.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is installed first and pinned: an unpinned torch pulls a multi-GB CUDA build. On Linux
# without a local CPU wheel, use the CPU index, for example:
#   make test TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
TORCH ?= torch==2.13.0
WORKERS ?= 2

.PHONY: book test env execute lint clean

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

env: $(VENV)/.installed

# Each of the $(WORKERS) test processes gets one BLAS and one OpenMP thread: two processes with two
# threads each on two cores make the libraries' spinning threads wait on each other, which slowed
# the NumPy CNN of chapter 3 eightfold. Results do not depend on the thread count.
test: env
	$(BIN)/ruff check .
	$(BIN)/ruff format --check chapters
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
		$(BIN)/python -m pytest -n $(WORKERS) --dist loadfile --nbval --nbval-current-env \
		--nbval-sanitize-with sanitize.cfg

book: env
	$(BIN)/jupyter-book build . -W -n --keep-going

# For authors: re-run every notebook in place (outputs and widget state saved) and print the time
# each took. Commit the result; `make test` then proves it reproducible.
execute: env
	$(BIN)/python tools/execute_notebooks.py

# The NumPy kernels timed against their PyTorch twins, one thread each: a ratio table (see
# benchmarks/README.md); then the book's budgets against what was measured (benchmarks/budgets.py:
# serial execution and each notebook from `make costs`, the site build timed now into a temporary
# directory, CI from .ci/run's _build/ci_times.json). A report, not a test: missed budgets do not
# fail it. QUICK=1 for a 10-second smoke run, without the site build.
.PHONY: benchmark
benchmark: env
	$(BIN)/python benchmarks/run.py $(if $(QUICK),--quick,)
	$(BIN)/python benchmarks/budgets.py $(if $(QUICK),--quick,)

# Every notebook's run time and its kernel's peak memory, executed as the tests execute them,
# written to the book page costs.md ("What each chapter costs") and, for make benchmark, to
# benchmarks/notebook_costs.json. About ten minutes.
.PHONY: costs
costs: env
	$(BIN)/python tools/measure_notebooks.py

# For instructors: the notebooks without their solutions, in _build/student/<chapter>/.
# CHAPTERS selects chapter folders, e.g. make student-copies CHAPTERS="chapters/01-gradient-descent"
.PHONY: student-copies
CHAPTERS ?=
student-copies: env
	$(BIN)/python tools/make_student_copies.py $(CHAPTERS)

# Every notebook run alone in a fresh environment with only what Colab preinstalls; its first
# cell must install the library (pointed at this checkout). Needs the package index; ~5 minutes.
.PHONY: colab-check
colab-check: env
	$(BIN)/python tools/colab_check.py

# The built site in headless Chromium (/usr/bin/chromium; CHROMIUM=... for another): typeset math,
# figures, kernel-free sliders. Needs node >= 20 and the npm registry; screenshots in
# _build/screenshots/. See tools/browser_test/run.sh.
.PHONY: browser-test
browser-test: book
	VENV=$(VENV) tools/browser_test/run.sh

lint: env
	$(BIN)/ruff check .
	$(BIN)/ruff format --check chapters

clean:
	rm -rf _build
