# One-command set-up: `make test` and `make train` install what they need themselves.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
TORCH_VERSION := 2.13.0

.PHONY: install test test-fast lint format bench clean train compare research docs

install: $(STAMP)

# torch is installed first and pinned: these machines hold a CPU build of torch==2.13.0
# on disk, while a looser requirement would pull a multi-GB CUDA build from the index.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install "torch==$(TORCH_VERSION)"
	$(PY) -m pip install -e ".[dev,data,sweep]" "torch==$(TORCH_VERSION)"
	touch $(STAMP)

# The suite on every core (pytest-xdist, one torch thread per worker: tests/conftest.py),
# then the tests marked `serial` alone. pytest exits 5 when it collects no tests: say so,
# and fail (make passes the status on).
XDIST ?= auto
test: install
	@$(PY) -m pytest -q -n $(XDIST) --dist worksteal -m "not serial"; status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; \
	if [ $$status -ne 0 ]; then exit $$status; fi; \
	$(PY) -m pytest -q -m serial; status=$$?; \
	if [ $$status -eq 5 ]; then status=0; fi; \
	exit $$status

# The core in under two minutes: cells, layers, kernels and their parity with torch.
test-fast: install
	@$(PY) -m pytest -q -n $(XDIST) --dist worksteal -m "core and not serial"

lint: install
	$(VENV)/bin/ruff check seqmodels tests notebooks
	$(VENV)/bin/ruff format --check seqmodels tests notebooks

format: install
	$(VENV)/bin/ruff check --fix seqmodels tests notebooks
	$(VENV)/bin/ruff format seqmodels tests notebooks

bench: install
	$(PY) -m seqmodels.cli.bench $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache

# The default experiment (character-level language model, seqmodels/conf/experiment/char_lm.yaml):
# a few minutes on 2 CPU cores; the run directory is printed at the end (logs/char_lm/runs/...).
train: install
	$(PY) -m seqmodels.cli.train $(ARGS)

# ElmanRNN (autograd and bptt backends) against torch.nn.RNN: a short adding run per encoder,
# same seed and data; table + overlaid learning curves in logs/compare/training/<time>/.
# `seqmodels-compare` (mode=numerics) prints the numerical differences instead.
compare: install
	$(PY) -m seqmodels.cli.compare mode=training threads=1 $(ARGS)

# The vanishing-gradient results (docs/research.md): adding T in {50,100,200} and copying
# delays {20,50} over tanh Elman, IRNN, LSTM and GRU; one table in logs/research/<time>/.
# A smaller run: make research ARGS="--cells tanh,lstm --adding 100 --copy 20"
research: install
	$(PY) -m seqmodels.diagnostics.research $(ARGS)

# The documentation site (mkdocs.yml, pages in docs/, API reference from the docstrings) into
# site/. Strict: a broken link or anchor, or an unresolved reference, fails the build.
docs: install
	$(VENV)/bin/mkdocs build --strict --site-dir site
