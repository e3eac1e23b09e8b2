# Everything runs inside .venv; `make demo` and `make test` create it on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ocrkit-installed

.PHONY: install demo test lint format bench clean

$(STAMP): setup.cfg pyproject.toml requirements/torch.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements/torch.txt
	$(PY) -m pip install -q -r requirements/torch.txt -e '.[dev,vlm,onnx,external,tensorboard,cjk]'
	touch $(STAMP)

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
