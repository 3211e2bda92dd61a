# Two commands on a fresh machine: `make demo` (main job on the embedded synthetic specimen)
# and `make test`. Both install what they need first (scripts/install.sh is idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python
export APT_CNN_NO_PROGRESS ?= 0

.PHONY: install test demo bench clean-venv

install:
	bash scripts/install.sh

test: install
	$(PY) -m pytest -q -ra tests

demo: install
	bash scripts/demo.sh

bench: install
	$(PY) bench/sdm.py --quick

clean-venv:
	rm -rf $(VENV)
