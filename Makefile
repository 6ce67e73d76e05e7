# tinymaskgit: `make help` lists the targets. Variables can be set on the command line, e.g.
#   make train-vqvae ARGS="data=tiny_imagenet10 trainer=gpu"
PYTHON ?= python
ARGS ?=
DATA ?= data
DEMO_STAMP := $(shell date +%Y-%m-%d_%H-%M-%S)
DEMO_DIR ?= logs/demo/$(DEMO_STAMP)
DEMO_VQ_EPOCHS ?= 5
DEMO_MG_EPOCHS ?= 10
DEMO_CLF_EPOCHS ?= 2
DEMO_EVAL = $(PYTHON) -m tinymaskgit.evaluate ckpt=$(DEMO_DIR)/maskgit/checkpoints/last.ckpt eval.backend=classifier \
	eval.classifier_ckpt=$(DEMO_DIR)/classifier/checkpoints/best.ckpt

.DEFAULT_GOAL := help
.PHONY: help install test test-fast check-floors lint format demo notebook app train-vqvae train-maskgit sample inpaint evaluate fid-sweep lab-sweep recipe-tiny-imagenet recipe-cat-faces data data-generated \
        data-tiny-imagenet benchmark clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-20s\033[0m %s\n", $$1, $$2}'

install: ## install the package (editable) with the dev tools
	$(PYTHON) -m pip install -e ".[dev]"

test: ## run the whole test suite, slow end-to-end tests included (CPU, offline, about 12 min on 2 cores; what CI runs)
	$(PYTHON) -m pytest -q

test-fast: ## the tests without the slow end-to-end ones (subprocesses, DDP, kill/resume, notebook, sweep): the edit loop
	$(PYTHON) -m pytest -q -m "not slow"

FLOOR_PACKAGES = lightning torchmetrics hydra-core omegaconf
check-floors: ## install the lowest allowed lightning/torchmetrics/hydra-core/omegaconf in .floors/ and run the stage tests
	rm -rf .floors && $(PYTHON) -m venv --system-site-packages .floors
	.floors/bin/python -m pip install -q --no-deps $$($(PYTHON) -c "import re; \
		floors = dict(re.findall(r'^\s*\"([A-Za-z0-9_.-]+)>=([0-9][^\",]*)\"', open('pyproject.toml').read(), re.M)); \
		print(' '.join(f'{n}=={floors[n]}' for n in '$(FLOOR_PACKAGES)'.split()))")
	.floors/bin/python -c "import lightning, torchmetrics, hydra, omegaconf; \
		print('floors:', lightning.__version__, torchmetrics.__version__, hydra.__version__, omegaconf.__version__)"
	PYTHONPATH=src .floors/bin/python -m pytest -q -m "not slow" -p no:cacheprovider \
		tests/test_train_vqvae.py tests/test_train_maskgit.py tests/test_evaluate.py tests/metrics

lint: ## ruff (lint + format check) and mypy on src/
	$(PYTHON) -m ruff check src tests benchmarks
	$(PYTHON) -m ruff format --check src tests benchmarks
	$(PYTHON) -m mypy src

format: ## apply ruff's formatting and safe fixes
	$(PYTHON) -m ruff format src tests benchmarks
	$(PYTHON) -m ruff check --fix src tests benchmarks

demo: ## the whole pipeline on the generated data with the tiny preset (2 CPU cores)
	$(PYTHON) -m tinymaskgit.train experiment=demo stage=vqvae trainer.max_epochs=$(DEMO_VQ_EPOCHS) \
		hydra.run.dir=$(DEMO_DIR)/vqvae $(ARGS)
	$(PYTHON) -m tinymaskgit.train experiment=demo stage=maskgit trainer.max_epochs=$(DEMO_MG_EPOCHS) \
		tokenizer_ckpt=$(DEMO_DIR)/vqvae/checkpoints/last.ckpt callbacks.images.every_n_epochs=5 \
		hydra.run.dir=$(DEMO_DIR)/maskgit $(ARGS)
	$(PYTHON) -m tinymaskgit.sample ckpt=$(DEMO_DIR)/maskgit/checkpoints/last.ckpt n_per_class=8 \
		hydra.run.dir=$(DEMO_DIR)/samples
	$(PYTHON) -m tinymaskgit.inpaint ckpt=$(DEMO_DIR)/maskgit/checkpoints/last.ckpt step_strips=[0,1] \
		hydra.run.dir=$(DEMO_DIR)/inpaint
	$(PYTHON) -m tinymaskgit.train experiment=demo stage=classifier trainer.max_epochs=$(DEMO_CLF_EPOCHS) \
		hydra.run.dir=$(DEMO_DIR)/classifier $(ARGS)
	$(DEMO_EVAL) protocol=reconstruction hydra.run.dir=$(DEMO_DIR)/eval/reconstruction
	$(DEMO_EVAL) protocol=generation n_per_class=50 per_class=false hydra.run.dir=$(DEMO_DIR)/eval/generation
	$(DEMO_EVAL) protocol=inpainting hydra.run.dir=$(DEMO_DIR)/eval/inpainting
	@cat $(DEMO_DIR)/eval/reconstruction/results.md > $(DEMO_DIR)/evaluation.md
	@tail -n +3 $(DEMO_DIR)/eval/generation/results.md >> $(DEMO_DIR)/evaluation.md
	@tail -n +3 $(DEMO_DIR)/eval/inpainting/results.md >> $(DEMO_DIR)/evaluation.md
	@echo; echo "Evaluation on the generated data (classifier features; no download):"; cat $(DEMO_DIR)/evaluation.md; echo
	@echo "demo outputs in $(DEMO_DIR):"
	@echo "  vqvae/images/     originals and reconstructions side by side"
	@echo "  samples/grid.png  a row of samples per class; samples/steps/ every decoding step"
	@echo "  inpaint/completed/ inpainted test images; inpaint/steps/ decoding-step strips and GIFs"
	@echo "  evaluation.md     reconstruction, generation and inpainting scores"

notebook: ## execute notebooks/demo.ipynb headless (after make demo) into logs/demo_executed.ipynb; or open it in Jupyter
	mkdir -p logs && $(PYTHON) -c "import nbformat, nbclient; nb = nbformat.read('notebooks/demo.ipynb', 4); \
		nbclient.NotebookClient(nb, timeout=900, kernel_name='python3').execute(); nbformat.write(nb, 'logs/demo_executed.ipynb')"
	@echo "executed notebook: logs/demo_executed.ipynb"

app: ## serve the web page (generate, inpaint, compare) on http://127.0.0.1:7860; ARGS="ckpt=... port=..."
	$(PYTHON) -m tinymaskgit.app $(ARGS)

train-vqvae: ## stage 1: train the VQ-VAE tokenizer (ARGS=... for overrides)
	$(PYTHON) -m tinymaskgit.train stage=vqvae $(ARGS)

train-maskgit: ## stage 2: train the MaskGIT transformer (ARGS="tokenizer_ckpt=... schedule=arccos")
	$(PYTHON) -m tinymaskgit.train stage=maskgit $(ARGS)

sample: ## generate images per class (ARGS="ckpt=... classes=[0,3] n_per_class=16")
	$(PYTHON) -m tinymaskgit.sample $(ARGS)

inpaint: ## inpaint masked images (ARGS="ckpt=... data=cat_faces")
	$(PYTHON) -m tinymaskgit.inpaint $(ARGS)

evaluate: ## FID/KID of a checkpoint (ARGS="protocol=generation ckpt=... eval.backend=classifier eval.classifier_ckpt=...")
	$(PYTHON) -m tinymaskgit.evaluate $(ARGS)

fid-sweep: ## sweep schedule x T x sweet spot x CFG weight (ARGS="ckpt=... eval.backend=..."); sweep=full for all
	$(PYTHON) -m tinymaskgit.evaluate sweep=default $(ARGS)

LAB_DIR ?= logs/lab-sweep/$(RECIPE_STAMP)
lab-sweep: ## the MaskGIT lab's comparison: schedule x T x sweet spot by inpainting FID, and each schedule's decoding steps (ARGS="ckpt=... data=cat_faces data.root=...")
	$(PYTHON) -m tinymaskgit.evaluate sweep=lab hydra.sweep.dir=$(LAB_DIR) $(ARGS)
	for s in cosine linear square; do \
		$(PYTHON) -m tinymaskgit.inpaint schedule=$$s limit=4 step_strips=[0,1,2,3] out_dir=$(LAB_DIR)/steps_$$s \
			hydra.run.dir=$(LAB_DIR)/steps_$$s $(ARGS) || exit 1; done
	@echo "lab sweep in $(LAB_DIR): fid_sweep.md (best first), fid_sweep.png, steps_<schedule>/steps/ (mask and image per step)"

data: data-generated ## prepare the default (generated) dataset

data-generated: ## write the generated dataset to $(DATA)/generated (no download)
	$(PYTHON) -c "from tinymaskgit.data.generated import generate; from pathlib import Path; generate(Path('$(DATA)/generated'))"

data-tiny-imagenet: ## download tiny-imagenet-200 (online) and keep the 10 classes in $(DATA)/tiny-imagenet-200
	$(PYTHON) -m tinymaskgit.data.download --root $(DATA)

RECIPE_STAMP := $(shell date +%Y-%m-%d_%H-%M-%S)
OUT ?= logs/recipe/$(RECIPE_STAMP)
recipe-tiny-imagenet: DATA_ROOT ?= data/tiny-imagenet-200
recipe-tiny-imagenet: ## the one-hour CPU recipe on tiny-imagenet-10 (DATA_ROOT=..., OUT=... to resume a run)
	$(PYTHON) -m tinymaskgit.recipe tiny_imagenet --data-root $(DATA_ROOT) --out $(OUT) $(ARGS)

recipe-cat-faces: DATA_ROOT ?= data/cat-faces-64
recipe-cat-faces: ## the one-hour CPU inpainting recipe (DATA_ROOT=..., OUT=..., optional CLASSIFIER=<a classifier's best.ckpt>, TOKENIZER=<the lab's VQGAN.pt>)
	$(PYTHON) -m tinymaskgit.recipe cat_faces --data-root $(DATA_ROOT) --out $(OUT) --classifier "$(CLASSIFIER)" \
		$(if $(TOKENIZER),--tokenizer "$(TOKENIZER)") $(ARGS)

benchmark: ## speed benchmarks: print a table and write JSON under bench_out/
	cd benchmarks && $(PYTHON) bench_train.py --out ../bench_out
	cd benchmarks && $(PYTHON) bench_sampling.py --out ../bench_out

clean: ## remove caches (never data/ or logs/)
	rm -rf .pytest_cache .mypy_cache .ruff_cache build dist src/*.egg-info
