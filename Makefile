# Face GAN Lab. Two commands on a fresh machine:
#   make run    execute every notebook headless (demo profile): executed copies, figures, metrics in outputs/
#   make test   strict nbval on the notebooks (smoke profile) + problem_unittests.py + unit tests
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PROFILE ?= demo
NB      ?=

.PHONY: run test lab bench data publish clean-cache help

help:
	@echo "make run | test | lab | bench | data | publish (see README)"

# A fresh venv whenever requirements.txt changes; torch is pinned there (2.13.0: CPU build here,
# CUDA build on a GPU machine).
$(STAMP): requirements.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $(STAMP)

data: $(STAMP)
	$(BIN)/python -m helpers.data synth --out data/synthfaces --n 20000 --size 64 --if-missing

run: data
	$(BIN)/python -m helpers.run_notebooks --profile $(PROFILE) $(NB)

test: $(STAMP)
	$(BIN)/python -m pytest --nbval notebooks/ problem_unittests.py tests/

# Re-execute the notebooks in place (demo profile) and refresh assets/: what we commit.
publish: data
	$(BIN)/python -m helpers.run_notebooks --profile $(PROFILE) --inplace $(NB)

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks

bench: data
	$(BIN)/python -m helpers.bench

clean-cache:
	rm -rf data/cache
