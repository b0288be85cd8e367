# batchkit developer and user targets. Every target takes JOB= (a job file).
JOB ?= jobs/productmind/job.toml
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BATCHKIT := $(BIN)/batchkit
ARGS ?=

.PHONY: help setup prepare execute load all run status report demo test test-llm lint format bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 12

setup: $(STAMP) ## Create .venv and install batchkit with its dev dependencies

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

prepare: setup ## Render the job's requests into DuckDB and batch files
	$(BATCHKIT) prepare -j $(JOB) $(ARGS)

execute: setup ## Send pending requests to the provider
	$(BATCHKIT) execute -j $(JOB) $(ARGS)

load: setup ## Validate results and load them into the target
	$(BATCHKIT) load -j $(JOB) $(ARGS)

all: setup ## Loop prepare and execute until nothing changes, then load
	$(BATCHKIT) run -j $(JOB) $(ARGS)

status: setup ## Show progress, spend and failures
	$(BATCHKIT) status -j $(JOB)

report: setup ## Write the HTML report
	$(BATCHKIT) report -j $(JOB)

demo: setup ## Run the example job end to end against the simulator
	$(BIN)/python -m batchkit.demo $(ARGS)

test: setup ## Run the test suite
	$(BIN)/pytest $(ARGS)

test-llm: setup ## Run a small job against a real llama.cpp server (slow, opt-in)
	bash scripts/test-llm.sh

lint: setup ## Check formatting, lint and types
	$(BIN)/ruff format --check batchkit tests benchmarks
	$(BIN)/ruff check batchkit tests benchmarks
	$(BIN)/mypy batchkit

format: setup ## Format the code
	$(BIN)/ruff format batchkit tests benchmarks
	$(BIN)/ruff check --fix batchkit tests benchmarks

bench: setup ## Print speed and memory figures against the targets
	$(BIN)/python -m benchmarks $(ARGS)

clean: ## Remove the virtual environment and run output
	rm -rf $(VENV) runs/*/
