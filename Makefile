# `make test` and `make run` set everything up on a fresh clone, then do their job.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test run lint format bench screenshots clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch comes from this machine's local wheels (pinned), the rest from the registry.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e '.[test,cluster]'  # cluster: the tests of `clifs index --cluster` on a local Ray
	# devkit/ (generators, training, evaluation) is not in the wheel: the dev venv sees it from the checkout.
	$(BIN)/python -c "import site, pathlib; pathlib.Path(site.getsitepackages()[0], 'clifs-devkit.pth').write_text('$(CURDIR)\n')"
	touch $(STAMP)

setup: $(STAMP)

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

run: setup
	$(BIN)/python -m clifs.demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup
	$(BIN)/python bench/index_throughput.py
	$(BIN)/python bench/query_latency.py

# The GUI rendered to docs/gui-*.png (the empty state, results, the detail pane), no display needed.
screenshots: setup
	QT_QPA_PLATFORM=offscreen $(BIN)/python bench/screenshots.py

clean:
	rm -rf $(VENV) build *.egg-info
