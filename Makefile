# Two commands matter on a fresh machine: `make local` and `make test`. Both run the set-up when needed.
# `make help` lists the targets by section; the sections follow the README's target table, whose page for each
# section explains its targets. A variable sits in the first section that reads it, or in the block below when
# several sections do; each is a default the command line overrides: `make local MODEL_DIR=artifacts/model-v2`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Read by several sections.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed
MODEL_DIR ?= artifacts/model
# DATA=PATH: the data folder (or one file) instead of training_jobs/config.py's default, which also knows the
# folder's layout: the Makefile asks it for TEST_FILE and EXTRA_DATA (read only by the targets that use them).
DATA ?=
DATA_FLAG := $(if $(DATA),--data $(DATA))
DATA_PATH = $(shell $(PY) -m training_jobs.config $(1) $(DATA_FLAG))
TEST_FILE ?= $(call DATA_PATH,test-split)
# Training-only rows from other publishers (titles in valid/test are dropped): better on unseen publishers.
EXTRA_DATA ?= $(call DATA_PATH,extra-data)
# RUNTIME: what serves the model (model/runtime.py; auto: int8 ONNX when the folder has it, else PyTorch).
RUNTIME ?= auto
# STAGE: the Chalice stage a target acts on: local (the offline stack), dev or prod.
STAGE ?= local
# AWS_ARGS: more arguments for an AWS target's command (its --help), such as --dry-run to print the calls only.
AWS_ARGS ?=

.PHONY: help
help: ## list the targets by section
	@awk -F':.*## ' '/^##@ /{printf "\n%s\n", substr($$0, 5)} /^[a-z-]+:.*## /{printf "  make %-16s %s\n", $$1, $$2}' \
		$(MAKEFILE_LIST)

##@ set-up and dependencies: docs/setup.md
.PHONY: setup lock check-lock clean docs
PYTHON ?= python3
# The documentation tools live in their own venv: MkDocs brings watchdog, which `chalice local` must not see in .venv.
DOCS_VENV := .venv-docs
DOCS_STAMP := $(DOCS_VENV)/.requirements-installed

setup: $(STAMP) ## create .venv from requirements-dev.lock, every file hash-checked (once)

# The lock covers Linux x86_64 and macOS arm64 with Python 3.11 and 3.12 (locking/platforms.py says so plainly and stops
# elsewhere). On Linux its torch is the PyTorch CPU index's +cpu build, which PyPI lacks: that entry goes first, alone,
# from a wheel this pip finds without any index (its find-links, or already installed) or else from CPU_INDEX; the
# whole lock then comes from PyPI. Putting the CPU index in front of every package would query it for each of them.
# `pip download` in this venv fetches no dependencies: that is how Chalice resolves chalice_app/requirements.txt
# (already the whole closure minus boto3/botocore, which the Lambda runtime has), so a plain `chalice deploy` or
# `chalice package` from here builds the small Lambda zip, not one with botocore (docs/aws-deployment.md measures
# both). `pip install` is unaffected.
CPU_INDEX ?= https://download.pytorch.org/whl/cpu
# `PYTHON $(PIP_INSTALL)`: pip in hash-checking mode, so every file, direct or transitive, needs its sha256 in the lock.
PIP_INSTALL = -m pip install --quiet --disable-pip-version-check --require-hashes

# $(call venv,DIR) makes the venv DIR (.venv, .venv-docs) unless it exists, after asking its interpreter (the venv's own
# once it exists) whether the locks cover it.
define venv
	@$(if $(wildcard $(1)/bin/python),$(1)/bin/python,$(PYTHON)) -m locking.platforms
	@test -x $(1)/bin/python || $(PYTHON) -m venv $(1)
endef

$(STAMP): requirements-dev.lock
	$(call venv,$(VENV))
	@$(PY) -m locking.lockfile cpu-index requirements-dev.lock > $(VENV)/cpu-index.lock
	$(PY) $(PIP_INSTALL) --no-deps --no-index -r $(VENV)/cpu-index.lock 2>/dev/null || \
		$(PY) $(PIP_INSTALL) --no-deps --index-url $(CPU_INDEX) -r $(VENV)/cpu-index.lock
	$(PY) $(PIP_INSTALL) -r requirements-dev.lock
	@printf '[download]\nno-deps = true\n' > $(VENV)/pip.conf
	@touch $@

$(DOCS_STAMP): requirements-docs.lock
	$(call venv,$(DOCS_VENV))
	$(DOCS_VENV)/bin/python $(PIP_INSTALL) -r requirements-docs.lock
	@touch $@

# Each X.lock is resolved from X.txt by uv for every supported platform × Python (locking/lock.py, which also holds the
# serving pins in requirements-dev.lock); it keeps the lock's versions where they still fit (UPGRADE=1: the newest
# allowed). Then the image, Lambda and SageMaker requirements get the lock's versions and hashes (locking/sync_pins.py).
LOCKS ?= requirements-dev.lock requirements-docs.lock
UPGRADE ?=

lock: setup ## resolve each of LOCKS for every platform, then sync the other pins to it
	$(PY) -m locking.lock $(if $(UPGRADE),--upgrade) $(LOCKS)
	$(PY) -m locking.sync_pins

# From the public indexes, on every supported platform × Python, every file's sha256 locked (locking/check_lock.py).
check-lock: setup ## prove each of LOCKS installs on every supported platform and Python
	$(PY) -m locking.check_lock $(LOCKS)

clean: ## remove caches and the built site (keeps the venvs and trained models)
	rm -rf .pytest_cache .ruff_cache site $$(find . -name __pycache__ -not -path './.venv*/*')

# The docs build is strict: a broken link or anchor between pages fails it (mkdocs.yml). MkDocs Material, in .venv-docs.
MKDOCS := NO_MKDOCS_2_WARNING=1 $(DOCS_VENV)/bin/python -m mkdocs build --strict --quiet

docs: $(DOCS_STAMP) ## build docs/ into the site/ folder, strictly (a broken link fails)
	$(MKDOCS) --site-dir site

##@ testing: docs/testing.md
.PHONY: test test-fast lint

# tests/unit/test_docs.py builds the docs strictly too.
test: setup $(DOCS_STAMP) ## ruff, then the whole pytest suite (what CI runs)
	$(PY) -m ruff check .
	$(PY) -m pytest

# `slow` tests train a model or start a server or a browser (tests/conftest.py marks every test whose fixtures do).
test-fast: setup $(DOCS_STAMP) ## ruff, then every test that needs no training, server or browser
	$(PY) -m ruff check .
	$(PY) -m pytest -m "not slow"

lint: setup ## ruff only
	$(PY) -m ruff check .

##@ training and evaluation: docs/training.md
.PHONY: teacher train evaluate error-analysis eda artifact
# SAMPLE=N|all: rows of a single data file to train on (train.py's --sample; its default keeps a laptop's run short).
SAMPLE ?=
# `=`, not `:=`: EXTRA_DATA asks the venv's Python, so it may expand only in a recipe, after `setup` made the venv.
TRAIN = $(PY) -m training_jobs.train --base-model embedded $(DATA_FLAG) $(if $(EXTRA_DATA),--extra-data $(EXTRA_DATA)) \
	$(if $(SAMPLE),--sample $(SAMPLE)) --model-dir $(MODEL_DIR)

# NLP-100 train + the corpus's extras, else a sample of the UCI corpus (downloaded when no data is found).
train: setup ## fine-tune the embedded encoder into MODEL_DIR (DATA=..., SAMPLE=N|all)
	$(TRAIN)

# The distillation teacher's scores, rebuilt from the same data as `make train` (cross-fitted encoders: slow, run
# once, offline; docs/training.md#distillation-from-an-offline-teacher).
TEACHER_FOLDS ?= 4
teacher: setup ## rebuild training_jobs/teacher_scores.npz, the scores that training distils
	$(PY) -m training_jobs.teacher --output training_jobs/teacher_scores.npz --folds $(TEACHER_FOLDS) \
		--base-model embedded $(DATA_FLAG) $(if $(EXTRA_DATA),--extra-data $(EXTRA_DATA)) $(if $(SAMPLE),--sample $(SAMPLE))

# Targets that need a model train one first when MODEL_DIR has none.
$(MODEL_DIR)/model.safetensors: | $(STAMP)
	$(TRAIN)

# Training writes the drift baseline; this adds it to a model folder made before that (scored as served: int8 ONNX).
$(MODEL_DIR)/drift_baseline.json: | $(MODEL_DIR)/model.safetensors $(STAMP)
	$(PY) -m training_jobs.drift_baseline --model-dir $(MODEL_DIR) $(DATA_FLAG)

# The report, ECE before and after calibration and PNGs into MODEL_DIR, for the test split and the story-disjoint judge.
evaluate: setup ## evaluate MODEL_DIR on NLP-100 test and its judge, then error-analysis
	$(PY) -m training_jobs.evaluate --model-dir $(MODEL_DIR) --data $(TEST_FILE) --plot
	$(PY) -m training_jobs.evaluate --model-dir $(MODEL_DIR) --data $(call DATA_PATH,data-dir) --story-disjoint --plot
	$(MAKE) --no-print-directory error-analysis

# Confusion pairs, confident mistakes, publishers, per-class calibration (test, judge, held-out publishers), PNGs.
error-analysis: setup ## write MODEL_DIR/error_analysis.md: where and how the model is wrong
	$(PY) -m training_jobs.error_analysis --model-dir $(MODEL_DIR) --data $(TEST_FILE) \
		--training-data $(call DATA_PATH,data-dir)

eda: setup ## data report with histograms into artifacts/eda/
	$(PY) -m training_jobs.eda $(DATA_FLAG) --output artifacts/eda

artifact: setup $(MODEL_DIR)/model.int8.onnx $(MODEL_DIR)/drift_baseline.json ## pack MODEL_DIR into model.tar.gz beside it
	$(PY) -m model.artifact --model-dir $(MODEL_DIR) --output $(dir $(MODEL_DIR))model.tar.gz

##@ serving and the endpoint: docs/serving.md
.PHONY: export-onnx endpoint classify-file batch-transform
ENDPOINT_PORT ?= 8080
# INPUT=path OUTPUT=path: the files of classify-file (local) and batch-transform (s3:// or local).
INPUT ?=
OUTPUT ?=

$(MODEL_DIR)/model.int8.onnx: $(MODEL_DIR)/model.safetensors model/onnx_export.py | $(STAMP)
	$(PY) -m model.onnx_export --model-dir $(MODEL_DIR)

# Redone when the weights or the exporter change.
export-onnx: $(MODEL_DIR)/model.int8.onnx ## add fused fp32 + int8 ONNX models to MODEL_DIR

endpoint: setup $(MODEL_DIR)/model.int8.onnx ## serve MODEL_DIR as a local SageMaker endpoint on ENDPOINT_PORT
	$(PY) -m model.serving.server --model-dir $(MODEL_DIR) --port $(ENDPOINT_PORT) --runtime $(RUNTIME)

# OUTPUT has INPUT's format plus label, model_version and score_<Label>; bad rows go to OUTPUT.rejects.
classify-file: setup $(MODEL_DIR)/model.int8.onnx ## label every row of INPUT into OUTPUT
	@test -n "$(INPUT)" -a -n "$(OUTPUT)" || { echo "usage: make classify-file INPUT=path OUTPUT=path [MODEL_DIR=... RUNTIME=...]"; exit 2; }
	$(PY) -m training_jobs.classify_file --model-dir $(MODEL_DIR) --runtime $(RUNTIME) --input $(INPUT) --output $(OUTPUT)

# JSON Lines, s3:// both; local paths run the same contract on a local endpoint (AWS_ARGS="--instance-count N").
batch-transform: setup $(MODEL_DIR)/model.int8.onnx $(MODEL_DIR)/drift_baseline.json ## INPUT -> OUTPUT as a SageMaker Batch Transform job
	@test -n "$(INPUT)" -a -n "$(OUTPUT)" || { echo "usage: make batch-transform INPUT=s3://... OUTPUT=s3://... [AWS_ARGS=...]"; exit 2; }
	$(PY) -m model.tools.batch_transform --model-dir $(MODEL_DIR) --input $(INPUT) --output $(OUTPUT) $(AWS_ARGS)

##@ benchmarks: docs/benchmarks.md
.PHONY: bench bench-local-start

# -> artifacts/bench.json, then bench-api's artifacts/bench-api.json and bench-local-start's.
bench: setup $(MODEL_DIR)/model.int8.onnx ## latency, throughput, cold start, RSS, size per runtime; then the others
	$(PY) -m model.tools.bench --model-dir $(MODEL_DIR) --data $(TEST_FILE) --output artifacts/bench.json
	$(MAKE) --no-print-directory bench-api
	$(MAKE) --no-print-directory bench-local-start

# Tables of 0, 10k and 100k records -> artifacts/bench-local-start.json.
bench-local-start: setup $(MODEL_DIR)/model.int8.onnx ## make local's start-up and disk size against its table's size
	$(PY) -m loadtest.bench_local_start --model-dir $(MODEL_DIR) --output artifacts/bench-local-start.json

##@ the local stack: docs/local-stack.md
.PHONY: local stand-ins simulated-day replay-unsaved
API_PORT ?= 8000
DYNAMODB_PORT ?= 8001
LOCAL_STATE_DIR ?= artifacts/local
# FAULTS=1: make local with fault injection (/_faults routes on the endpoint and on a DynamoDB proxy; docs/load-testing.md)
FAULTS ?=
# A/B offline: VARIANTS="news-classifier=artifacts/model:0.9 news-v2=artifacts/model-v2:0.1" (NAME=DIR:WEIGHT each)
VARIANTS ?=
# LOG=file: the API log replay-unsaved reads instead of STAGE's CloudWatch logs.
LOG ?=
# Records simulated-day adds.
RECORDS ?= 100000

# moto's DynamoDB, the local endpoint (MODEL_DIR, trained and exported if missing) and `chalice local` on API_PORT.
local: setup $(MODEL_DIR)/model.int8.onnx ## the whole stack offline on 127.0.0.1 (a model is trained if missing)
	$(PY) -m local_stack.orchestrator --model-dir $(MODEL_DIR) --runtime $(RUNTIME) --api-port $(API_PORT) \
		--endpoint-port $(ENDPOINT_PORT) --dynamodb-port $(DYNAMODB_PORT) --state-dir $(LOCAL_STATE_DIR) \
		$(foreach variant,$(VARIANTS),--variant $(variant)) $(if $(FAULTS),--faults)

# `chalice local` with autoreload is the Chalice user's edit loop: these two in one terminal, the plain command in
# another (the local stage's .chalice/local-aws-config names these ports; docs/local-stack.md).
stand-ins: setup $(MODEL_DIR)/model.int8.onnx ## moto + the endpoint only, for `chalice local --stage local`
	$(PY) -m local_stack.orchestrator --stand-ins-only --model-dir $(MODEL_DIR) --runtime $(RUNTIME) \
		--api-port $(API_PORT) --endpoint-port $(ENDPOINT_PORT) --dynamodb-port $(DYNAMODB_PORT) \
		--state-dir $(LOCAL_STATE_DIR) $(foreach variant,$(VARIANTS),--variant $(variant)) $(if $(FAULTS),--faults)

# Built by the API's own code, written straight into the table's file on disk.
simulated-day: setup ## add RECORDS of simulated traffic to make local's table
	$(PY) -m local_stack.simulated_day --records $(RECORDS) --state-dir $(LOCAL_STATE_DIR)

replay-unsaved: setup ## write `transaction_unsaved` log events into STAGE's table (LOG=file)
	$(PY) -m chalice_app.ops.transaction_table --stage $(STAGE) replay-unsaved $(if $(LOG),--log-file $(LOG))

##@ load, chaos and fuzz testing: docs/load-testing.md
.PHONY: loadtest chaos fuzz bench-api
# Each unset one keeps loadtest/run.py's default (`python -m loadtest.run --help`). SHAPE=steady|step|spike,
# MODE=api|endpoint, LOADTEST_HOST=URL: a running API instead of a stack of the run's own.
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
# More arguments for loadtest/chaos.py and loadtest/fuzz_api.py (their --help), e.g. FUZZ_ARGS="--url URL".
CHAOS_ARGS ?=
FUZZ_ARGS ?=

# Thresholds (loadtest/thresholds.toml) and the table reconciled against the requests -> artifacts/loadtest/.
loadtest: setup $(MODEL_DIR)/model.int8.onnx ## headless Locust on the local stack (USERS, DURATION, SHAPE, ...)
	$(PY) -m loadtest.run $(LOADTEST_FLAGS) --data $(TEST_FILE) --model-dir $(MODEL_DIR) --output artifacts/loadtest

# Each endpoint and DynamoDB fault in turn: the documented statuses, the replay, none missing -> artifacts/chaos/.
chaos: setup $(MODEL_DIR)/model.int8.onnx ## a fault-injecting local stack: every fault, nothing lost
	$(PY) -m loadtest.chaos --model-dir $(MODEL_DIR) --runtime $(RUNTIME) --data $(TEST_FILE) --output artifacts/chaos \
		$(CHAOS_ARGS)

# Against `chalice local` on a stack of its own, fixed seed, its case budget and no failure -> artifacts/fuzz/.
fuzz: setup $(MODEL_DIR)/model.int8.onnx ## schemathesis cases from openapi.yaml against the local API
	$(PY) -m loadtest.fuzz_api --model-dir $(MODEL_DIR) --output artifacts/fuzz $(FUZZ_ARGS)

# -> artifacts/bench-api.json
bench-api: setup $(MODEL_DIR)/model.int8.onnx ## POST /classify end to end (int8 model) and the API's overhead
	$(PY) -m loadtest.bench_api --model-dir $(MODEL_DIR) --data $(TEST_FILE) --output artifacts/bench-api.json

##@ A/B testing and retraining: docs/ab-and-retraining.md
.PHONY: ab-report export-feedback retrain promote active-learning-week local-canary canary
HOURS ?= 24
DAYS ?= 7
FEEDBACK ?= artifacts/feedback/feedback.tsv
# EXCLUDE_CLIENTS="KEY_ID ...": API key ids whose feedback is left out of the export
EXCLUDE_CLIENTS ?=
CANARY_WEIGHT ?= 0.1
# More arguments for the candidate's training (training_jobs/train.py's --help).
RETRAIN_ARGS ?=
# VERSION=NAME: the registered version promote gives CANARY_WEIGHT of STAGE's traffic (retrain prints it).
VERSION ?=
# ENDPOINT=NAME: the endpoint canary sends CANARY_WEIGHT of STAGE's traffic to.
ENDPOINT ?=

# Statistical tests and a verdict -> artifacts/ab/ (JSON, PNG).
# REPLAY=N: the reviewed headlines and up to N of the window's headlines go to every variant's endpoint, so the report
# compares the versions on the same headlines; it calls InvokeEndpoint (billed on AWS). REPLAY=0: no replay.
REPLAY ?= 500
ab-report: setup ## compare STAGE's A/B variants over HOURS; REPLAY headlines sent to each
	$(PY) -m chalice_app.reports.ab --stage $(STAGE) --hours $(HOURS) --local-state-dir $(LOCAL_STATE_DIR) \
		--replay $(REPLAY) --output artifacts/ab

# MAX_LABELS_PER_KEY=N: count at most the first N titles each key labelled in the window (feedback.py's --help)
MAX_LABELS_PER_KEY ?=

# Labels of the keys STAGE trusts, one vote per key and title, the label most keys gave, no valid/test titles,
# EXCLUDE_CLIENTS left out.
export-feedback: setup ## STAGE's feedback of the last DAYS -> FEEDBACK TSV
	$(PY) -m training_jobs.feedback_export --stage $(STAGE) --days $(DAYS) $(DATA_FLAG) --output $(FEEDBACK) \
		$(if $(filter local,$(STAGE)),--local-state-dir $(LOCAL_STATE_DIR)) \
		$(if $(MAX_LABELS_PER_KEY),--max-labels-per-key $(MAX_LABELS_PER_KEY)) \
		$(foreach client,$(EXCLUDE_CLIENTS),--exclude-client $(client))

retrain: setup ## data + FEEDBACK -> candidate; gate; register it if it passes
	$(PY) -m training_jobs.retrain --feedback $(FEEDBACK) $(DATA_FLAG) $(if $(EXTRA_DATA),--extra-data $(EXTRA_DATA)) \
		$(if $(filter command line,$(origin MODEL_DIR)),--current-model-dir $(MODEL_DIR)) -- $(RETRAIN_ARGS)

# On dev/prod: the version's endpoint, STAGE's MODEL_VARIANTS, the API redeployed; locally the registry's split.
# AWS_ARGS="--dry-run" prints the plan; "--deploy-args --region R --endpoint-args=..." as `make deploy` takes them.
promote: setup ## VERSION takes CANARY_WEIGHT of STAGE's traffic (AWS_ARGS=--dry-run)
	@test -n "$(VERSION)" || { echo "usage: make promote VERSION=name [STAGE=local|dev|prod CANARY_WEIGHT=0.1]"; exit 2; }
	$(PY) -m chalice_app.ops.promote --stage $(STAGE) --version $(VERSION) --canary-share $(CANARY_WEIGHT) $(AWS_ARGS)

# A simulated week on a local stack of its own: the review queue's labels against random ones and none, each budget
# and seed a warm-started candidate, gated and scored on the judge -> artifacts/active-learning/<run>/ (summary.md,
# summary.json, learning_curve.png). QUEUE=answers ranks the answers by the queue's rule where the API has no /review.
BUDGETS ?= 100 200 400
SEEDS ?= 0 1
QUEUE ?= api
# More arguments for training_jobs/active_learning_week.py (its --help), e.g. WEEK_ARGS="--pool seen_story".
WEEK_ARGS ?=
active-learning-week: setup $(MODEL_DIR)/model.int8.onnx ## traffic -> labels of the review queue -> retrain, measured
	$(PY) -m training_jobs.active_learning_week --model-dir $(MODEL_DIR) $(DATA_FLAG) --budgets $(BUDGETS) \
		--seeds $(SEEDS) --queue $(QUEUE) --output artifacts/active-learning $(WEEK_ARGS)

# The current model and the canary, from the local registry in artifacts/models.
local-canary: setup ## make local, serving the last local promotion's A/B split
	variants="$$($(PY) -m training_jobs.registry --stage local)" && $(MAKE) --no-print-directory local VARIANTS="$$variants"

canary: setup ## STAGE=dev|prod: CANARY_WEIGHT of its traffic to ENDPOINT, API redeployed
	$(PY) -m chalice_app.ops.canary --stage $(STAGE) --endpoint $(ENDPOINT) --weight $(CANARY_WEIGHT) --apply $(AWS_ARGS)

##@ drift monitoring: docs/drift.md
.PHONY: drift
# For AWS stages: DRIFT_BASELINE='s3://BUCKET/news-classifier/models/{model_version}/drift_baseline.json'
DRIFT_BASELINE ?= $(MODEL_DIR)/drift_baseline.json

# -> artifacts/drift/ (JSON, PNG)
drift: setup $(MODEL_DIR)/drift_baseline.json ## PSI of STAGE's last HOURS of traffic vs the model's baseline
	$(PY) -m chalice_app.reports.drift --stage $(STAGE) --hours $(HOURS) --baseline '$(DRIFT_BASELINE)' \
		--local-state-dir $(LOCAL_STATE_DIR) --output artifacts/drift

##@ AWS deployment: docs/aws-deployment.md
.PHONY: deploy infra infra-delete deploy-role deploy-endpoint delete-endpoint train-sagemaker
# More arguments for deploy's endpoint step (model/tools/deploy_endpoint.py's --help).
ENDPOINT_ARGS ?=
SAGEMAKER_ENDPOINT ?= news-classifier-dev
# The stage's ECR repository (name or URI): with docker, the endpoint serves the slim ONNX image built and pushed there.
ECR_REPOSITORY ?=

# Ends with a smoke test and prints the API's URL.
deploy: setup $(MODEL_DIR)/model.int8.onnx $(MODEL_DIR)/drift_baseline.json ## STAGE=dev|prod: infra, endpoint, `chalice deploy`, usage plan
	$(PY) -m chalice_app.ops.deploy --stage $(STAGE) --model-dir $(MODEL_DIR) --endpoint-args="$(ENDPOINT_ARGS)" $(AWS_ARGS)

# Table, key + usage plan, log groups, alarms, dashboard, ECR repository (chalice_app/infra/stack.yaml).
infra: setup ## STAGE=dev|prod: the stack of what `chalice deploy` does not create
	$(PY) -m chalice_app.ops.infra deploy --stage $(STAGE) $(AWS_ARGS)

# After `chalice delete`.
infra-delete: setup ## STAGE=dev|prod: delete the infra stack; the table is kept
	$(PY) -m chalice_app.ops.infra delete --stage $(STAGE) $(AWS_ARGS)

# GITHUB_REPOSITORY=OWNER/REPO; OIDC trust: that environment on main (dev) or v* tags (prod) only.
# AWS_ARGS="--create-oidc-provider --dry-run" for a first account or a preview.
deploy-role: setup ## STAGE=dev|prod: the role deploy.yml assumes; prints its ARN
	$(PY) -m chalice_app.ops.deploy_role --stage $(STAGE) $(AWS_ARGS)

# On the slim image in ECR_REPOSITORY (needs docker), else the Hugging Face image.
deploy-endpoint: setup $(MODEL_DIR)/model.int8.onnx $(MODEL_DIR)/drift_baseline.json ## MODEL_DIR -> S3 -> SAGEMAKER_ENDPOINT
	$(PY) -m model.tools.deploy_endpoint deploy --model-dir $(MODEL_DIR) --endpoint $(SAGEMAKER_ENDPOINT) \
		$(if $(ECR_REPOSITORY),--ecr-repository $(ECR_REPOSITORY)) $(AWS_ARGS)

delete-endpoint: setup ## delete SAGEMAKER_ENDPOINT with its configs and models (S3 artifacts stay)
	$(PY) -m model.tools.deploy_endpoint delete --endpoint $(SAGEMAKER_ENDPOINT) $(AWS_ARGS)

# Needs SAGEMAKER_ROLE_ARN; AWS_ARGS take training_jobs/launch.py's options (--spot, --instance-type, ...).
train-sagemaker: setup ## train as a SageMaker training job
	$(PY) -m training_jobs.launch $(DATA_FLAG) $(AWS_ARGS)
