# Face GAN Lab. Two commands on a fresh machine:
#   make run    execute every notebook headless (demo profile) from the published `synthetic` weights: executed
#               copies, figures, metrics in outputs/ (TRAIN=1 trains every model instead; DATA=path/to/celeba
#               trains on a real folder)
#   make test   strict nbval on the notebooks (smoke profile) + problem_unittests.py + unit tests
#   make test-browser  every notebook in JupyterLab + headless Chromium: Run All, move every slider (tests/browser)
#   make app NB=01     a notebook's sliders as a Voila dashboard on 127.0.0.1, on the published weights (TRAIN=1: trains)
#   make train MODEL=dcgan [PROFILE=full DATA=data/celeba NPROC=8]  headless training, NPROC processes (torchrun)
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PROFILE ?= demo
NB      ?=
DATA    ?=
DATA_ARG = $(if $(DATA),--data $(DATA),)
# Published weights unless TRAIN=1 or a data folder is named (a set is trained on its own data).
TRAIN   ?=
WEIGHTS_SET = $(if $(or $(TRAIN),$(DATA)),,synthetic)

.PHONY: run test test-browser chromium app lab bench bench-quality bench-ddp data publish publish-real rehearse gpu-check train align evaluate clean-cache help

help:
	@echo "make run | test | test-browser | app NB=NN | lab | bench | bench-quality | bench-ddp | data | publish |"
	@echo "     rehearse | gpu-check | train MODEL=dcgan [PROFILE=full DATA=data/celeba NPROC=8] |"
	@echo "     align IN=photos OUT=aligned (see README)"

# A fresh venv whenever the requirements change; torch is pinned there (2.13.0: CPU build here,
# CUDA build on a GPU machine).
$(STAMP): requirements.txt requirements-nodeps.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

data: $(STAMP)
	$(BIN)/python -m helpers.data synth --out data/synthfaces --n 20000 --size 64 --if-missing

run: data
	$(BIN)/python -m helpers.tools.run_notebooks --profile $(PROFILE) $(DATA_ARG) $(if $(WEIGHTS_SET),--pretrained $(WEIGHTS_SET),) $(NB)

test: $(STAMP)
	$(BIN)/python -m pytest --nbval notebooks/ problem_unittests.py tests/ --ignore=tests/browser

# Browser suite: playwright + voila into .venv, Debian's chromium (never `playwright install`).
BROWSER_STAMP := $(VENV)/.browser-installed
SUDO          := $(if $(filter 0,$(shell id -u)),,sudo)
APP_PORT      ?= 8866

$(BROWSER_STAMP): requirements-browser.txt $(STAMP)
	$(BIN)/pip install -q -r requirements-browser.txt
	touch $(BROWSER_STAMP)

chromium:
	@test -x /usr/bin/chromium || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

test-browser: $(BROWSER_STAMP) chromium
	$(BIN)/python -m pytest tests/browser -v

# A notebook's sliders as a dashboard: make app NB=01 [PROFILE=smoke] [APP_PORT=8866]
app: $(BROWSER_STAMP)
	@nb=$$(ls notebooks/$(NB)_*.ipynb 2>/dev/null | head -1); \
	test -n "$(NB)" -a -n "$$nb" || { echo "usage: make app NB=01 (one of: $$(ls notebooks | cut -c1-2 | tr '\n' ' '))"; exit 2; }; \
	echo "Voila: $$nb ($(PROFILE) profile, $(if $(WEIGHTS_SET),published weights $(WEIGHTS_SET),training here)) on http://127.0.0.1:$(APP_PORT)/ (Ctrl-C stops it)"; \
	FACEGAN_PROFILE=$(PROFILE) FACEGAN_PRETRAINED=$(WEIGHTS_SET) $(BIN)/voila "$$nb" --no-browser --port=$(APP_PORT) --Voila.ip=127.0.0.1 --show_tracebacks=True

# Re-execute the notebooks in place (demo profile), training every model, refresh assets/ (figures,
# metrics.json), the README's results table and the published `synthetic` weights from them: what we commit.
publish: data
	$(BIN)/python -m helpers.tools.run_notebooks --profile $(PROFILE) --inplace --publish synthetic $(NB)

# Runs on real faces (make publish-real DATA=../shared/data/celeba_dev NB="01 02 03 04"): metrics and
# figures of generated faces only into assets/real/<data folder>/, and the README's real-faces table.
# IMG_SIZE=64 trains at 64 px; SET=celeba also exports the runs' weights as that published set (a
# notebook resumes what `make train` trained into its checkpoint folder: train long there first).
# CONFIG="encoder_after.max_seconds=600 gans=('acgan',)" sets config fields of the runs that train.
IMG_SIZE ?=
SET      ?=
CONFIG   ?=
publish-real: data
	@test -n "$(DATA)" || { echo "usage: make publish-real DATA=path/to/real/faces [NB=\"02 03\"] [IMG_SIZE=64] [SET=celeba] [CONFIG=\"key=value ...\"]"; exit 2; }
	$(BIN)/python -m helpers.tools.run_notebooks --profile $(PROFILE) --real $(DATA_ARG) $(if $(IMG_SIZE),--img-size $(IMG_SIZE),) \
		$(if $(SET),--publish $(SET),) $(foreach c,$(CONFIG),--set "$(c)") $(NB)

# Every notebook in the `full` profile (its networks, sizes and code paths) on CelebA- and LFW-shaped
# stand-ins, each training run capped at REHEARSE seconds and two epochs: outputs/rehearsal/.
REHEARSE ?= 60
rehearse: $(STAMP)
	$(BIN)/python -m helpers.data rehearsal --out data/rehearsal --if-missing
	@ok=0; \
	$(BIN)/python -m helpers.tools.run_notebooks --rehearse $(REHEARSE) --data data/rehearsal/celeba 00 01 02 03 04 || ok=1; \
	$(BIN)/python -m helpers.tools.run_notebooks --rehearse $(REHEARSE) --data data/rehearsal/lfwcrop_color 05 || ok=1; \
	exit $$ok

# Every model's `full` preset trained in two short slices (fresh, then resumed) on this machine's GPU:
# speed, peak memory, resume, and what each whole schedule would take -> outputs/gpu_check/.
GPU_SECONDS ?= 15
gpu-check: $(STAMP)
	$(BIN)/python -m helpers.tools.gpu_check --seconds $(GPU_SECONDS) --out outputs/gpu_check

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks

bench: data
	$(BIN)/python -m helpers.tools.bench

# Our DCGAN against pytorch/examples' on real faces, equal minutes: outputs/bench_quality/ (skipped without them).
QUALITY_DATA ?= ../shared/data/celeba_dev
bench-quality: $(STAMP)
	$(BIN)/python -m helpers.tools.bench_quality --data $(QUALITY_DATA)

# The DCGAN-64 step in 1 process x 1 and x 2 threads, 2 processes (global / local batch norm) and 2 that
# never communicate (the machine's ceiling) -> outputs/bench/
bench-ddp: $(STAMP)
	$(BIN)/python -m helpers.tools.bench_ddp

# Headless training of one model under torchrun (one process per GPU; gloo processes on a CPU), into the
# notebook's checkpoint folder; rerun the same command to continue. TRAIN_ARGS: e.g. --seconds 600 --parts acgan
MODEL      ?=
NPROC      ?= 1
TRAIN_ARGS ?=
train: $(STAMP)
	@test -n "$(MODEL)" || { echo "usage: make train MODEL=dcgan|fader|smile|began|lapgan [PROFILE=full] [DATA=data/celeba] [NPROC=8]"; exit 2; }
	$(BIN)/torchrun --standalone --nproc_per_node=$(NPROC) -m helpers.tools.train --model $(MODEL) --profile $(PROFILE) \
		$(DATA_ARG) $(TRAIN_ARGS)

# A folder of ordinary photos as CelebA-aligned faces (dlib landmarks, one similarity transform):
# OUT/<same relative path>.png at 178x218 and OUT/align_report.json (helpers/data/align.py).
IN  ?=
OUT ?=
align: $(STAMP)
	@test -n "$(IN)" -a -n "$(OUT)" || { echo "usage: make align IN=folder/of/photos OUT=folder/for/the/aligned/faces"; exit 2; }
	$(BIN)/python -m helpers.data.align "$(IN)" "$(OUT)"

# A trained model judged on a face folder's split (FID / KID, face detector; Fader: swap, identity ...):
# make evaluate MODEL=dcgan WEIGHTS=checkpoints_gan/dcgan/<run>/last.pt DATA=data/celeba OUT=eval.json [N=2000] [SPLIT=test]
WEIGHTS ?=
N       ?= 2000
SPLIT   ?= test
evaluate: $(STAMP)
	@test -n "$(MODEL)" -a -n "$(WEIGHTS)" -a -n "$(OUT)" || { echo "usage: make evaluate MODEL=dcgan|fader|smile|began|lapgan WEIGHTS=path/to/last.pt|synthetic [DATA=folder] OUT=file.json [N=2000] [SPLIT=test|valid|valid+test|all] [RECORD=1]"; exit 2; }
	$(BIN)/python -m helpers.tools.evaluate --model $(MODEL) --weights "$(WEIGHTS)" $(DATA_ARG) --out "$(OUT)" --n $(N) --split $(SPLIT) $(if $(RECORD),--record,)

clean-cache:
	rm -rf data/cache
