# Everything runs inside .venv; `make demo` and `make test` create it on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ocrkit-installed

.PHONY: install demo test lint format bench clean constraints

# Every install is pinned to requirements/constraints.txt (exact versions CI tested), so a new
# upstream release cannot change CI silently. Refresh the pins with `make constraints`.
CONSTRAINTS := requirements/constraints.txt
EXTRAS := dev,vlm,onnx,external,tensorboard,cjk

# Each step says what it does, and pip (not quiet) names each package it collects and downloads,
# with its size and a progress bar on a terminal: the first install puts about 7 GB in .venv
# (torch and its CUDA libraries are most of it) and takes minutes.
PIP_PROGRESS := --no-input

$(STAMP): setup.cfg pyproject.toml requirements/torch.txt $(CONSTRAINTS)
	@echo "==> [1/4] $$(date +%T) creating $(VENV) with $(PYTHON) ($$($(PYTHON) --version))"
	$(PYTHON) -m venv $(VENV)
	@echo "==> [2/4] $$(date +%T) upgrading pip"
	$(PY) -m pip install -q --upgrade pip
	@echo "==> [3/4] $$(date +%T) installing torch + torchvision (several GB with CUDA: the longest step)"
	$(PY) -m pip install $(PIP_PROGRESS) -c $(CONSTRAINTS) -r requirements/torch.txt
	@echo "==> [4/4] $$(date +%T) installing ocrkit and its extras ($(EXTRAS))"
	$(PY) -m pip install $(PIP_PROGRESS) -c $(CONSTRAINTS) -r requirements/torch.txt -e '.[$(EXTRAS)]'
	touch $(STAMP)
	@echo "==> $$(date +%T) done: $(VENV) is ready ($(VENV)/bin/ocrkit --help)"

# Pin what the venv holds now (after `pip install -U ...` of the packages to move), then check
# that the pins resolve together with the package's own requirements.
constraints:
	{ echo "# Exact versions CI installs (make constraints; see docs/training.md, Pinned CI)."; \
	  $(PY) -m pip freeze --exclude-editable | grep -v '^#'; } > $(CONSTRAINTS)
	$(PY) -m pip install -q --dry-run -c $(CONSTRAINTS) -r requirements/torch.txt -e '.[$(EXTRAS)]'

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ocrkit demo

test: $(STAMP)
	$(VENV)/bin/ruff check ocrkit tests benchmarks
	$(VENV)/bin/ruff format --check ocrkit tests benchmarks
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check ocrkit tests benchmarks

format: $(STAMP)
	$(VENV)/bin/ruff format ocrkit tests benchmarks
	$(VENV)/bin/ruff check --fix ocrkit tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/data_pipeline.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
