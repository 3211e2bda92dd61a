# Two commands on a fresh machine: `make demo` (main job on the embedded synthetic specimen)
# and `make test`. Both install what they need first (scripts/install.sh is idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python
export APT_CNN_NO_PROGRESS ?= 0

.PHONY: install test demo bench model clean-venv

install:
	bash scripts/install.sh

test: install
	$(PY) -m pytest -q -ra tests

demo: install
	bash scripts/demo.sh

bench: install
	$(PY) bench/sdm.py --quick

# Retrain the shipped default model from the shipped configs (about 45 minutes on 2 cores):
# the paper's dictionary (configs/library.yaml), 8,000 mixed maps (another seed) given to
# training as extra maps, 2,000 pure maps of a third seed that set the operating threshold,
# then Horovod training on $(TRAIN_RANKS) rank(s).
RANKS ?= 2
# one process with two threads trains faster than two Horovod ranks on 2 cores (docs/performance.md)
TRAIN_RANKS ?= 1
MODEL_DATA ?= out/model-data
FOLDS ?= 1
model: install
	mkdir -p $(MODEL_DATA)
	OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 $(VENV)/bin/mpiexec -n $(RANKS) \
	  $(VENV)/bin/apt-cnn simulate --out $(MODEL_DATA)/dictionary.h5 --overwrite
	OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 $(VENV)/bin/mpiexec -n $(RANKS) \
	  $(VENV)/bin/apt-cnn simulate --counts 0 0 8000 --seed 2022 --out $(MODEL_DATA)/mixed.h5 --overwrite
	OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 $(VENV)/bin/mpiexec -n $(RANKS) \
	  $(VENV)/bin/apt-cnn simulate --counts 1000 1000 --seed 2023 --out $(MODEL_DATA)/validation.h5 --overwrite
	OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 $(VENV)/bin/mpiexec --bind-to none -n $(TRAIN_RANKS) \
	  $(VENV)/bin/apt-cnn train --dictionary $(MODEL_DATA)/dictionary.h5 --extra $(MODEL_DATA)/mixed.h5 \
	  --kinds fcc l12 --positive-weight 32 --validation $(MODEL_DATA)/validation.h5 \
	  --out $(MODEL_DATA)/model --folds $(FOLDS) --epochs 7 --seed 0
	mkdir -p models/default
	cp $(MODEL_DATA)/model/model.keras $(MODEL_DATA)/model/model_card.json \
	  $(MODEL_DATA)/model/roc.png $(MODEL_DATA)/model/response.png models/default/

clean-venv:
	rm -rf $(VENV)
