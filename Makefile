# tinymaskgit: `make help` lists the targets. Variables can be set on the command line, e.g.
#   make train-vqvae ARGS="data=tiny_imagenet10 trainer=gpu"
PYTHON ?= python
ARGS ?=
DATA ?= data
DEMO_DIR ?= logs/demo/$(shell date +%Y-%m-%d_%H-%M-%S)

.DEFAULT_GOAL := help
.PHONY: help install test test-all lint format demo train-vqvae train-maskgit fid-sweep data data-generated \
        data-tiny-imagenet benchmark clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-20s\033[0m %s\n", $$1, $$2}'

install: ## install the package (editable) with the dev tools
	$(PYTHON) -m pip install -e ".[dev]"

test: ## run the test suite (CPU, offline, a few minutes)
	$(PYTHON) -m pytest -q

lint: ## ruff (lint + format check) and mypy on src/
	$(PYTHON) -m ruff check src tests benchmarks
	$(PYTHON) -m ruff format --check src tests benchmarks
	$(PYTHON) -m mypy src

format: ## apply ruff's formatting and safe fixes
	$(PYTHON) -m ruff format src tests benchmarks
	$(PYTHON) -m ruff check --fix src tests benchmarks

demo: ## the whole pipeline on the generated data with the tiny preset (2 CPU cores)
	$(PYTHON) -m tinymaskgit.train experiment=demo stage=vqvae hydra.run.dir=$(DEMO_DIR)/vqvae $(ARGS)
	@echo "reconstructions: $(DEMO_DIR)/vqvae/images/ (originals and reconstructions side by side)"

train-vqvae: ## stage 1: train the VQ-VAE tokenizer (ARGS=... for overrides)
	$(PYTHON) -m tinymaskgit.train stage=vqvae $(ARGS)

train-maskgit: ## stage 2: train the MaskGIT transformer (ARGS="tokenizer_ckpt=...")
	@echo "stage 2 arrives with the MaskGIT issue"; exit 1

fid-sweep: ## FID over schedule x steps x sweet spot x CFG weight (ARGS="ckpt=...")
	@echo "the FID sweep arrives with the evaluation issue"; exit 1

data: data-generated ## prepare the default (generated) dataset

data-generated: ## write the generated dataset to $(DATA)/generated (no download)
	$(PYTHON) -c "from tinymaskgit.data.generated import generate; from pathlib import Path; generate(Path('$(DATA)/generated'))"

data-tiny-imagenet: ## download tiny-imagenet-200 (online) and keep the 10 classes in $(DATA)/tiny-imagenet-200
	$(PYTHON) -m tinymaskgit.data.download --root $(DATA)

benchmark: ## speed benchmarks: print a table and write JSON under bench_out/
	cd benchmarks && $(PYTHON) bench_vqvae.py --out ../bench_out

clean: ## remove caches (never data/ or logs/)
	rm -rf .pytest_cache .mypy_cache .ruff_cache build dist src/*.egg-info
