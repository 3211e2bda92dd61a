# Two commands on a fresh machine: `make demo` (main job on the embedded synthetic specimen)
# and `make test`. Both install what they need first (scripts/install.sh is idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python
export APT_CNN_NO_PROGRESS ?= 0

.PHONY: install test test-mpio demo bench model model-table1 model-ions clean-venv

install:
	bash scripts/install.sh

test: install
	$(PY) -m pytest -q -ra --durations=15 tests

# The parallel-HDF5 job (CI runs it after `make test`): Debian's Open MPI and parallel HDF5, a venv
# (.venv-mpio) with mpi4py and h5py built against them, and the mpio writer's tests under mpiexec.
test-mpio:
	bash scripts/install_mpio.sh
	APT_CNN_REQUIRE_MPIO=1 .venv-mpio/bin/python -m pytest -q -ra tests/test_mpio.py

demo: install
	bash scripts/demo.sh

bench: install
	$(PY) bench/sdm.py --quick

# Retrain the shipped models from the shipped configs (about 35 and 45 minutes on 2 cores).
# `model`: the default model (models/default): the library without the Table 1 shortcut
# (configs/library.yaml: acquisition drawn independently of the class, mixed maps with their
# L1_2 share as the target), calibrated on the cubes of six simulated specimens of other seeds.
# `model-table1`: models/table1, the paper's Table 1 dictionary (configs/library_table1.yaml) +
# 8,000 mixed maps of another seed, L1_2 weighted 32x, threshold set on 2,000 maps of a third seed.
RANKS ?= 2
# one process with two threads trains faster than two Horovod ranks on 2 cores (docs/performance.md)
TRAIN_RANKS ?= 1
MODEL_DATA ?= out/model-data
FOLDS ?= 1
# the venv's own Open MPI (pip), else the site MPI that install.sh built mpi4py against
MPIRUN = OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 $(or $(wildcard $(VENV)/bin/mpiexec),mpiexec)
model: install
	mkdir -p $(MODEL_DATA)
	$(MPIRUN) -n $(RANKS) $(VENV)/bin/apt-cnn simulate --out $(MODEL_DATA)/dictionary.h5 --overwrite
	$(MPIRUN) --bind-to none -n $(TRAIN_RANKS) $(VENV)/bin/apt-cnn train --dictionary $(MODEL_DATA)/dictionary.h5 \
	  --calibrate --out $(MODEL_DATA)/model --folds $(FOLDS) --epochs 7 --seed 0
	mkdir -p models/default
	cp $(MODEL_DATA)/model/model.keras $(MODEL_DATA)/model/model_card.json $(MODEL_DATA)/model/roc.png \
	  $(MODEL_DATA)/model/response.png $(MODEL_DATA)/model/reliability.png models/default/

model-table1: install
	mkdir -p $(MODEL_DATA)/table1
	$(MPIRUN) -n $(RANKS) $(VENV)/bin/apt-cnn simulate --library library_table1 \
	  --out $(MODEL_DATA)/table1/dictionary.h5 --overwrite
	$(MPIRUN) -n $(RANKS) $(VENV)/bin/apt-cnn simulate --library library_table1 --counts 0 0 8000 --seed 2022 \
	  --out $(MODEL_DATA)/table1/mixed.h5 --overwrite
	$(MPIRUN) -n $(RANKS) $(VENV)/bin/apt-cnn simulate --library library_table1 --counts 1000 1000 --seed 2023 \
	  --out $(MODEL_DATA)/table1/validation.h5 --overwrite
	$(MPIRUN) --bind-to none -n $(TRAIN_RANKS) $(VENV)/bin/apt-cnn train --dictionary $(MODEL_DATA)/table1/dictionary.h5 \
	  --extra $(MODEL_DATA)/table1/mixed.h5 --kinds fcc l12 --positive-weight 32 \
	  --validation $(MODEL_DATA)/table1/validation.h5 --out $(MODEL_DATA)/table1/model --folds $(FOLDS) --epochs 7 --seed 0
	mkdir -p models/table1
	cp $(MODEL_DATA)/table1/model/model.keras $(MODEL_DATA)/table1/model/model_card.json \
	  $(MODEL_DATA)/table1/model/roc.png $(MODEL_DATA)/table1/model/response.png models/table1/

clean-venv:
	rm -rf $(VENV)

# models/ion: the per-ion classifier (segment method ion_mlp): 150 simulated 18 nm specimens with
# conditions drawn over the accuracy benchmark's ranges (seeds 8001..), 16 validation specimens
# (9001..) for its calibration; features cached in $(MODEL_DATA)/ion-work (about 12 GB).
model-ions: install
	$(MPIRUN) --bind-to none -n $(TRAIN_RANKS) $(VENV)/bin/apt-cnn train-ions --out $(MODEL_DATA)/ion \
	  --work $(MODEL_DATA)/ion-work --specimens 150 --validation 16 --rows 40000 --epochs 6
	mkdir -p models/ion
	cp $(MODEL_DATA)/ion/*.keras $(MODEL_DATA)/ion/model_card.json models/ion/
