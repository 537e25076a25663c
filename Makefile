# nascli: `make run` runs the main job on the embedded digits dataset, `make test` runs the tests.
# Both create .venv and install nascli into it when it is missing.

VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUNS   ?= runs

.DEFAULT_GOAL := help
.PHONY: help install run test lint docs bench bench-paths clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install nascli (editable) with test and lint tools

run: $(STAMP) ## Main job on digits: search (random baseline), then retrain the best architecture
	$(BIN)/nas search dataset=digits --run-root $(RUNS)
	$(BIN)/nas retrain latest --run-root $(RUNS)

test: $(STAMP) ## Run the test suite (two workers, one thread each: tests/conftest.py; a module's xdist_group shares its fixtures)
	$(BIN)/pytest -q -n 2 --dist loadgroup --durations=15

lint: $(STAMP) ## Static checks (ruff)
	$(BIN)/ruff check src tests bench scripts examples

docs: $(STAMP) ## The documentation site -> site/ (reference tables checked against the registries, strict build)
	$(BIN)/python scripts/gen_reference.py --check
	$(BIN)/mkdocs build --strict --site-dir site

bench: $(STAMP) ## Benchmarks against in-process references -> bench/*.json
	$(BIN)/python bench/run.py --out bench/results.json
	$(BIN)/python bench/proxies.py --out bench/proxies.json
	$(BIN)/python bench/proxy_stability.py --out bench/proxy_stability.json
	$(BIN)/python bench/pnas_efficiency.py --out bench/pnas_efficiency.json
	$(BIN)/python bench/checkpoint_overhead.py --out bench/checkpoint_overhead.json
	$(BIN)/python bench/executors.py --out bench/results.json
	$(BIN)/python bench/pnas_child_cost.py --out bench/results.json
	$(BIN)/python bench/precision_steps.py --out bench/precision_steps.json
	$(BIN)/python bench/precision_sensitive.py --out bench/precision_sensitive.json
	$(BIN)/python bench/own_scoring.py --out bench/own_scoring.json

bench-paths: $(STAMP) ## Whole searches and retrains, precision auto vs float32 (about an hour) -> bench/precision_paths.json
	$(BIN)/python bench/precision_paths.py --out bench/precision_paths.json

clean: ## Remove build artefacts, caches and run directories
	rm -rf build dist site src/*.egg-info .pytest_cache .ruff_cache $(RUNS)
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
