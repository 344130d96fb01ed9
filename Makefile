# Two commands matter on a fresh machine: `make local` and `make test`. Both run the set-up when needed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed
MODEL_DIR ?= artifacts/model
DATA ?=
DATA_FLAG := $(if $(DATA),--data $(DATA))
TEST_FILE ?= $(or $(DATA),../shared/data/news_aggregator)/nlp100/test.tsv

.DEFAULT_GOAL := help
.PHONY: help setup test lint train evaluate eda artifact clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

setup: $(STAMP) ## create .venv and install requirements-dev.txt (no-op when up to date)

$(STAMP): requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

test: setup ## ruff, then the whole pytest suite
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: setup ## ruff only
	$(PY) -m ruff check .

train: setup ## fine-tune the embedded encoder on the NLP-100 split into MODEL_DIR (default artifacts/model)
	$(PY) -m training_jobs.train --base-model embedded $(DATA_FLAG) --model-dir $(MODEL_DIR)

evaluate: setup ## evaluate MODEL_DIR on the NLP-100 test split (TEST_FILE=... for another file)
	$(PY) -m training_jobs.evaluate --model-dir $(MODEL_DIR) --data $(TEST_FILE) --plot

eda: setup ## data report with histograms into artifacts/eda/
	$(PY) -m training_jobs.eda $(DATA_FLAG) --output artifacts/eda

artifact: setup ## pack MODEL_DIR into artifacts/model.tar.gz (SageMaker layout)
	$(PY) -m model.artifact --model-dir $(MODEL_DIR) --output $(dir $(MODEL_DIR))model.tar.gz

clean: ## remove caches (keeps .venv and trained models)
	rm -rf .pytest_cache .ruff_cache $$(find . -name __pycache__ -not -path './.venv/*')
