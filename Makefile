# Two commands matter on a fresh machine: `make local` and `make test`. Both run the set-up when needed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed
# The documentation tools live in their own venv: MkDocs brings watchdog, which `chalice local` must not see in .venv.
DOCS_VENV := .venv-docs
DOCS_STAMP := $(DOCS_VENV)/.requirements-installed
MODEL_DIR ?= artifacts/model
# DATA=PATH: the data folder (or one file) instead of training_jobs/config.py's default, which also knows the
# folder's layout: the Makefile asks it for TEST_FILE and EXTRA_DATA (read only by the targets that use them).
DATA ?=
DATA_FLAG := $(if $(DATA),--data $(DATA))
DATA_PATH = $(shell $(PY) -m training_jobs.config $(1) $(DATA_FLAG))
TEST_FILE ?= $(call DATA_PATH,test-split)
# Training-only rows from other publishers (titles in valid/test are dropped): better on unseen publishers.
EXTRA_DATA ?= $(call DATA_PATH,extra-data)

.DEFAULT_GOAL := help
.PHONY: help setup lock check-lock test test-fast lint docs teacher train evaluate error-analysis calibrate eda artifact clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

setup: $(STAMP) ## create .venv and install requirements-dev.lock, every file checked against its locked hash (no-op when up to date)

# The lock covers Linux x86_64 and macOS arm64 with Python 3.11 and 3.12 (tools/platforms.py says so plainly and stops
# elsewhere). On Linux its torch is the PyTorch CPU index's +cpu build, which PyPI lacks: that entry goes first, alone,
# from a wheel this pip finds without any index (its find-links, or already installed) or else from CPU_INDEX; the
# whole lock then comes from PyPI. Putting the CPU index in front of every package would query it for each of them.
# `pip download` in this venv fetches no dependencies: that is how Chalice resolves chalice_app/requirements.txt
# (already the whole closure minus boto3/botocore, which the Lambda runtime has), so a plain `chalice deploy` or
# `chalice package` from here builds the ~1 MB Lambda zip, not 18 MB with botocore. `pip install` is unaffected.
CPU_INDEX ?= https://download.pytorch.org/whl/cpu
# `PYTHON $(PIP_INSTALL)`: pip in hash-checking mode, so every file, direct or transitive, needs its sha256 in the lock.
PIP_INSTALL = -m pip install --quiet --disable-pip-version-check --require-hashes

# $(call venv,DIR) makes the venv DIR (.venv, .venv-docs) unless it exists, after asking its interpreter (the venv's own
# once it exists) whether the locks cover it.
define venv
	@$(if $(wildcard $(1)/bin/python),$(1)/bin/python,$(PYTHON)) -m tools.platforms
	@test -x $(1)/bin/python || $(PYTHON) -m venv $(1)
endef

$(STAMP): requirements-dev.lock
	$(call venv,$(VENV))
	@$(PY) -m tools.lockfile cpu-index requirements-dev.lock > $(VENV)/cpu-index.lock
	$(PY) $(PIP_INSTALL) --no-deps --no-index -r $(VENV)/cpu-index.lock 2>/dev/null || \
		$(PY) $(PIP_INSTALL) --no-deps --index-url $(CPU_INDEX) -r $(VENV)/cpu-index.lock
	$(PY) $(PIP_INSTALL) -r requirements-dev.lock
	@printf '[download]\nno-deps = true\n' > $(VENV)/pip.conf
	@touch $@

$(DOCS_STAMP): requirements-docs.lock
	$(call venv,$(DOCS_VENV))
	$(DOCS_VENV)/bin/python $(PIP_INSTALL) -r requirements-docs.lock
	@touch $@

# Each X.lock is resolved from X.txt by uv for every supported platform × Python (tools/lock.py, which also holds the
# serving pins in requirements-dev.lock); it keeps the lock's versions where they still fit (UPGRADE=1: the newest
# allowed).
LOCKS ?= requirements-dev.lock requirements-docs.lock

lock: setup ## resolve each of LOCKS (X.lock from X.txt, hashed, every supported platform), then give the image, Lambda and SageMaker requirements their versions and hashes
	$(PY) -m tools.lock $(if $(UPGRADE),--upgrade) $(LOCKS)
	$(PY) -m tools.sync_pins

check-lock: setup ## prove each of LOCKS installs on every supported platform × Python from the public indexes, every file's sha256 locked
	$(PY) -m tools.check_lock $(LOCKS)

# The docs build is strict: a broken link or anchor between pages fails it (mkdocs.yml).
MKDOCS := NO_MKDOCS_2_WARNING=1 $(DOCS_VENV)/bin/python -m mkdocs build --strict --quiet

test: setup $(DOCS_STAMP) ## ruff, then the whole pytest suite (tests/unit/test_docs.py builds the docs strictly)
	$(PY) -m ruff check .
	$(PY) -m pytest

# `slow` tests train a model or start a server or a browser (tests/conftest.py marks every test whose fixtures do).
test-fast: setup $(DOCS_STAMP) ## ruff, then every test that needs no training, no server and no browser (-m "not slow"; under 2 minutes)
	$(PY) -m ruff check .
	$(PY) -m pytest -m "not slow"

lint: setup ## ruff only
	$(PY) -m ruff check .

docs: $(DOCS_STAMP) ## build the documentation site from docs/ into site/ (MkDocs Material in .venv-docs, strict: a broken link fails)
	$(MKDOCS) --site-dir site

# SAMPLE=N|all: rows of a single data file to train on (train.py's --sample; its default keeps a laptop near 10 minutes).
SAMPLE ?=
# `=`, not `:=`: EXTRA_DATA asks the venv's Python, so it may expand only in a recipe, after `setup` made the venv.
TRAIN = $(PY) -m training_jobs.train --base-model embedded $(DATA_FLAG) $(if $(EXTRA_DATA),--extra-data $(EXTRA_DATA)) \
	$(if $(SAMPLE),--sample $(SAMPLE)) --model-dir $(MODEL_DIR)

# The distillation teacher's scores, rebuilt from the same data as `make train` (cross-fitted encoders: slow, run once).
TEACHER_FOLDS ?= 4
teacher: setup ## rebuild training_jobs/teacher_scores.npz, the out-of-fold scores that training distils (4 encoders + TF-IDF)
	$(PY) -m training_jobs.teacher --output training_jobs/teacher_scores.npz --folds $(TEACHER_FOLDS) --base-model embedded \
		$(DATA_FLAG) $(if $(EXTRA_DATA),--extra-data $(EXTRA_DATA)) $(if $(SAMPLE),--sample $(SAMPLE))

train: setup ## fine-tune the embedded encoder into MODEL_DIR (default artifacts/model): NLP-100 train + corpus extras, else a sample of the UCI corpus (downloaded when no data is found; SAMPLE=all: every row)
	$(TRAIN)

# Targets that need a model train one first when MODEL_DIR has none.
$(MODEL_DIR)/model.safetensors: | $(STAMP)
	$(TRAIN)

evaluate: setup ## evaluate MODEL_DIR on NLP-100 test (TEST_FILE=...) and its story-disjoint judge: reports, ECE, PNGs; then error-analysis
	$(PY) -m training_jobs.evaluate --model-dir $(MODEL_DIR) --data $(TEST_FILE) --plot
	$(PY) -m training_jobs.evaluate --model-dir $(MODEL_DIR) --data $(call DATA_PATH,data-dir) --story-disjoint --plot
	$(MAKE) --no-print-directory error-analysis

error-analysis: setup ## MODEL_DIR/error_analysis.md + PNGs: confusion pairs, confident mistakes, publishers, per-class calibration (test, judge, held-out publishers)
	$(PY) -m training_jobs.error_analysis --model-dir $(MODEL_DIR) --data $(TEST_FILE) \
		--training-data $(call DATA_PATH,data-dir)

calibrate: setup ## fit and store MODEL_DIR's temperature on its validation split (training does it; for older folders)
	$(PY) -m training_jobs.calibrate --model-dir $(MODEL_DIR) $(DATA_FLAG)

eda: setup ## data report with histograms into artifacts/eda/
	$(PY) -m training_jobs.eda $(DATA_FLAG) --output artifacts/eda

artifact: setup $(MODEL_DIR)/model.int8.onnx $(MODEL_DIR)/drift_baseline.json ## pack MODEL_DIR, with its int8 ONNX model, into model.tar.gz next to it
	$(PY) -m model.artifact --model-dir $(MODEL_DIR) --output $(dir $(MODEL_DIR))model.tar.gz

.PHONY: export-onnx endpoint bench
ENDPOINT_PORT ?= 8080
RUNTIME ?= auto

$(MODEL_DIR)/model.int8.onnx: $(MODEL_DIR)/model.safetensors model/onnx_export.py | $(STAMP)
	$(PY) -m model.onnx_export --model-dir $(MODEL_DIR)

export-onnx: $(MODEL_DIR)/model.int8.onnx ## add fused fp32 + int8 ONNX models to MODEL_DIR (redone when the weights or the exporter change)

endpoint: setup $(MODEL_DIR)/model.int8.onnx ## serve MODEL_DIR as a local SageMaker endpoint on ENDPOINT_PORT (RUNTIME=auto)
	$(PY) -m model.serving.server --model-dir $(MODEL_DIR) --port $(ENDPOINT_PORT) --runtime $(RUNTIME)

bench: setup $(MODEL_DIR)/model.int8.onnx ## latency, throughput, cold start, RSS, size per runtime -> artifacts/bench.json
	$(PY) -m model.tools.bench --model-dir $(MODEL_DIR) --data $(TEST_FILE) --output artifacts/bench.json
	$(MAKE) --no-print-directory bench-api

.PHONY: classify-file
INPUT ?=
OUTPUT ?=

classify-file: setup $(MODEL_DIR)/model.int8.onnx ## label every row of INPUT into OUTPUT (same format + label, model_version, score_<Label>; bad rows -> OUTPUT.rejects)
	@test -n "$(INPUT)" -a -n "$(OUTPUT)" || { echo "usage: make classify-file INPUT=path OUTPUT=path [MODEL_DIR=... RUNTIME=...]"; exit 2; }
	$(PY) -m training_jobs.classify_file --model-dir $(MODEL_DIR) --runtime $(RUNTIME) --input $(INPUT) --output $(OUTPUT)

.PHONY: train-sagemaker deploy-endpoint delete-endpoint batch-transform
SAGEMAKER_ENDPOINT ?= news-classifier-dev
AWS_ARGS ?=
# The stage's ECR repository (name or URI): with docker, the endpoint serves the slim ONNX image built and pushed there.
ECR_REPOSITORY ?=

train-sagemaker: setup ## SageMaker training job (needs SAGEMAKER_ROLE_ARN; AWS_ARGS="--epochs 2 --spot ...")
	$(PY) -m training_jobs.launch $(DATA_FLAG) $(AWS_ARGS)

deploy-endpoint: setup $(MODEL_DIR)/model.int8.onnx $(MODEL_DIR)/drift_baseline.json ## MODEL_DIR -> S3 -> serverless SAGEMAKER_ENDPOINT on the slim image in ECR_REPOSITORY (needs docker; else the Hugging Face image) (AWS_ARGS="--dry-run")
	$(PY) -m model.tools.deploy deploy --model-dir $(MODEL_DIR) --endpoint $(SAGEMAKER_ENDPOINT) \
		$(if $(ECR_REPOSITORY),--ecr-repository $(ECR_REPOSITORY)) $(AWS_ARGS)

batch-transform: setup $(MODEL_DIR)/model.int8.onnx $(MODEL_DIR)/drift_baseline.json ## JSON Lines INPUT -> OUTPUT as a SageMaker Batch Transform job (s3:// both; local paths: the same contract on a local endpoint) (AWS_ARGS="--instance-count 4 --dry-run")
	@test -n "$(INPUT)" -a -n "$(OUTPUT)" || { echo "usage: make batch-transform INPUT=s3://... OUTPUT=s3://... [AWS_ARGS=...]"; exit 2; }
	$(PY) -m model.tools.batch_transform --model-dir $(MODEL_DIR) --input $(INPUT) --output $(OUTPUT) $(AWS_ARGS)

delete-endpoint: setup ## delete SAGEMAKER_ENDPOINT with its configs and models (S3 artifacts stay)
	$(PY) -m model.tools.deploy delete --endpoint $(SAGEMAKER_ENDPOINT) $(AWS_ARGS)

.PHONY: deploy infra infra-delete
ENDPOINT_ARGS ?=

deploy: setup $(MODEL_DIR)/model.int8.onnx $(MODEL_DIR)/drift_baseline.json ## STAGE=dev|prod: infra stack, endpoint, chalice deploy, usage plan, smoke test; prints the URL (AWS_ARGS="--dry-run")
	$(PY) -m chalice_app.ops.deploy --stage $(STAGE) --model-dir $(MODEL_DIR) --endpoint-args="$(ENDPOINT_ARGS)" $(AWS_ARGS)

infra: setup ## STAGE=dev|prod: the stack chalice deploy does not create (table, key + usage plan, log groups, alarms, dashboard, ECR) (AWS_ARGS="--dry-run")
	$(PY) -m chalice_app.ops.infra deploy --stage $(STAGE) $(AWS_ARGS)

infra-delete: setup ## STAGE=dev|prod: delete the infra stack (after `chalice delete`); the table is kept (AWS_ARGS="--dry-run")
	$(PY) -m chalice_app.ops.infra delete --stage $(STAGE) $(AWS_ARGS)

.PHONY: local stand-ins create-table api-keys replay-unsaved bench-api
API_PORT ?= 8000
DYNAMODB_PORT ?= 8001
LOCAL_STATE_DIR ?= artifacts/local
STAGE ?= local
LOG ?=
# FAULTS=1: make local with fault injection (/_faults routes on the endpoint and on a DynamoDB proxy; docs/load-testing.md)
FAULTS ?=
# A/B offline: VARIANTS="news-classifier=artifacts/model:0.9 news-v2=artifacts/model-v2:0.1" (NAME=DIR:WEIGHT each)
VARIANTS ?=
HOURS ?= 24

local: setup $(MODEL_DIR)/model.int8.onnx ## the whole stack offline: moto DynamoDB + local endpoint (MODEL_DIR, trained and exported if missing) + chalice local on API_PORT
	$(PY) -m chalice_app.local.stack --model-dir $(MODEL_DIR) --runtime $(RUNTIME) --api-port $(API_PORT) \
		--endpoint-port $(ENDPOINT_PORT) --dynamodb-port $(DYNAMODB_PORT) --state-dir $(LOCAL_STATE_DIR) \
		$(foreach variant,$(VARIANTS),--variant $(variant)) $(if $(FAULTS),--faults)

# `chalice local` with autoreload is the Chalice user's edit loop: these two in one terminal, the plain command in
# another (the local stage's .chalice/local-aws-config names these ports; docs/local-stack.md).
stand-ins: setup $(MODEL_DIR)/model.int8.onnx ## moto's DynamoDB + the local endpoint only, for `cd chalice_app && chalice local --stage local` in another terminal
	$(PY) -m chalice_app.local.stack --stand-ins-only --model-dir $(MODEL_DIR) --runtime $(RUNTIME) \
		--api-port $(API_PORT) --endpoint-port $(ENDPOINT_PORT) --dynamodb-port $(DYNAMODB_PORT) \
		--state-dir $(LOCAL_STATE_DIR) $(foreach variant,$(VARIANTS),--variant $(variant)) $(if $(FAULTS),--faults)

# Training writes the drift baseline; this adds it to a model folder made before that (scored as served: int8 ONNX).
$(MODEL_DIR)/drift_baseline.json: | $(MODEL_DIR)/model.safetensors $(STAMP)
	$(PY) -m training_jobs.drift_baseline --model-dir $(MODEL_DIR) $(DATA_FLAG)

.PHONY: drift
# For AWS stages: DRIFT_BASELINE='s3://BUCKET/news-classifier/models/{model_version}/drift_baseline.json'
DRIFT_BASELINE ?= $(MODEL_DIR)/drift_baseline.json

drift: setup $(MODEL_DIR)/drift_baseline.json ## PSI of STAGE's last HOURS of traffic vs the model's baseline -> artifacts/drift/ (JSON, PNG)
	$(PY) -m chalice_app.reports.drift --stage $(STAGE) --hours $(HOURS) --baseline '$(DRIFT_BASELINE)' \
		--local-state-dir $(LOCAL_STATE_DIR) --output artifacts/drift

.PHONY: ab-report
ab-report: setup ## compare STAGE's A/B variants over the last HOURS (default 24): tests + verdict -> artifacts/ab/ (JSON, PNG)
	$(PY) -m chalice_app.reports.ab --stage $(STAGE) --hours $(HOURS) --local-state-dir $(LOCAL_STATE_DIR) \
		--output artifacts/ab

create-table: setup ## create STAGE's transaction table if missing (AWS credentials/endpoint from the environment)
	$(PY) -m chalice_app.ops.transaction_table --stage $(STAGE) create-table

# KEYS="create acme --operator" | KEYS=list | KEYS="revoke acme"
KEYS ?= list

api-keys: setup ## STAGE's per-client API keys and usage plans (KEYS="create NAME", "revoke NAME", default list)
	$(PY) -m chalice_app.ops.api_keys --stage $(STAGE) $(KEYS)

replay-unsaved: setup ## write `transaction_unsaved` log events into STAGE's table (LOG=file, else its CloudWatch logs)
	$(PY) -m chalice_app.ops.transaction_table --stage $(STAGE) replay-unsaved $(if $(LOG),--log-file $(LOG))

bench-api: setup $(MODEL_DIR)/model.int8.onnx ## POST /classify p50 end to end (int8 model) and API overhead -> artifacts/bench-api.json
	$(PY) -m loadtest.bench_api --model-dir $(MODEL_DIR) --data $(TEST_FILE) --output artifacts/bench-api.json

.PHONY: chaos
CHAOS_ARGS ?=

chaos: setup $(MODEL_DIR)/model.int8.onnx ## a fault-injecting local stack: each endpoint and DynamoDB fault in turn, documented statuses, replay, 0 missing -> artifacts/chaos/ (CHAOS_ARGS="--requests 48")
	$(PY) -m loadtest.chaos --model-dir $(MODEL_DIR) --runtime $(RUNTIME) --data $(TEST_FILE) --output artifacts/chaos \
		$(CHAOS_ARGS)

.PHONY: loadtest
# Unset: loadtest/run.py's defaults (32 users, 60 s, all users started in 1 s, steady, api, 4 tasks/s per user).
USERS ?=
DURATION ?=
SPAWN_RATE ?=
SHAPE ?=
MODE ?=
USER_RATE ?=
LOADTEST_HOST ?=
LOADTEST_FLAGS := $(if $(USERS),--users $(USERS)) $(if $(DURATION),--duration $(DURATION)) \
	$(if $(SPAWN_RATE),--spawn-rate $(SPAWN_RATE)) $(if $(SHAPE),--shape $(SHAPE)) $(if $(MODE),--mode $(MODE)) \
	$(if $(USER_RATE),--user-rate $(USER_RATE)) $(if $(LOADTEST_HOST),--host $(LOADTEST_HOST))

loadtest: setup $(MODEL_DIR)/model.int8.onnx ## headless Locust on the local stack (USERS DURATION SPAWN_RATE SHAPE=step|spike MODE=endpoint USER_RATE LOADTEST_HOST=url); thresholds + reconciliation -> artifacts/loadtest/
	$(PY) -m loadtest.run $(LOADTEST_FLAGS) --data $(TEST_FILE) --model-dir $(MODEL_DIR) --output artifacts/loadtest

.PHONY: fuzz
FUZZ_ARGS ?=

fuzz: setup $(MODEL_DIR)/model.int8.onnx ## schemathesis from openapi.yaml vs chalice local on its own stack: >= 1000 cases, fixed seed, 0 failures -> artifacts/fuzz/ (FUZZ_ARGS="--url URL")
	$(PY) -m loadtest.fuzz_api --model-dir $(MODEL_DIR) --output artifacts/fuzz $(FUZZ_ARGS)

.PHONY: export-feedback retrain local-canary canary
DAYS ?= 7
FEEDBACK ?= artifacts/feedback/feedback.tsv
CANARY_WEIGHT ?= 0.1
RETRAIN_ARGS ?=
# EXCLUDE_CLIENTS="KEY_ID ...": API key ids whose feedback is left out of the export
EXCLUDE_CLIENTS ?=

export-feedback: setup ## STAGE's transactions with feedback over the last DAYS days -> FEEDBACK TSV (deduplicated, no valid/test titles; EXCLUDE_CLIENTS=...)
	$(PY) -m training_jobs.feedback --stage $(STAGE) --days $(DAYS) $(DATA_FLAG) --output $(FEEDBACK) \
		$(if $(filter local,$(STAGE)),--local-state-dir $(LOCAL_STATE_DIR)) \
		$(foreach client,$(EXCLUDE_CLIENTS),--exclude-client $(client))

retrain: setup ## data + FEEDBACK -> candidate; gate vs the current model; promote with a CANARY_WEIGHT share on STAGE (AWS_ARGS="--dry-run")
	$(PY) -m training_jobs.retrain --feedback $(FEEDBACK) $(DATA_FLAG) $(if $(EXTRA_DATA),--extra-data $(EXTRA_DATA)) \
		--stage $(STAGE) --canary-weight $(CANARY_WEIGHT) \
		$(if $(filter command line,$(origin MODEL_DIR)),--current-model-dir $(MODEL_DIR)) $(AWS_ARGS) -- $(RETRAIN_ARGS)

local-canary: setup ## make local serving the last local promotion's A/B split (current model + canary) from artifacts/models
	variants="$$($(PY) -m training_jobs.registry --stage local)" && $(MAKE) --no-print-directory local VARIANTS="$$variants"

canary: setup ## STAGE=dev|prod ENDPOINT=... CANARY_WEIGHT=0.5: that share of STAGE's traffic to ENDPOINT, API redeployed (AWS_ARGS="--dry-run")
	$(PY) -m chalice_app.ops.canary --stage $(STAGE) --endpoint $(ENDPOINT) --weight $(CANARY_WEIGHT) --apply $(AWS_ARGS)

clean: ## remove caches and the built docs site (keeps .venv, .venv-docs and trained models)
	rm -rf .pytest_cache .ruff_cache site $$(find . -name __pycache__ -not -path './.venv*/*')
