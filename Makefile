# Two commands on a fresh machine (see README.md):
#   make reproduce   # every notebook, every PDF report, SCORECARD.md (PROFILE=standard|long|paper|smoke)
#   make test        # unit tests and every notebook under nbval in the smoke profile
# Each sets up .venv on first use.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= standard
# The data folder: $AE_DATA_DIR if set, else ../shared/data beside the checkout, else data/.
AE_DATA_DIR ?= $(if $(wildcard ../shared/data/MNIST),$(abspath ../shared/data),$(CURDIR)/data)
export AE_DATA_DIR

.PHONY: install data reproduce test lab bench paper-check paper-estimate clean-smoke clean-checkpoints

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

install: $(VENV)/.installed

# Fetches only files that are missing or fail their checksum (needs the network once).
data: install
	$(PY) -m common.data download

reproduce: data
	$(PY) -m common.reproduce --profile $(PROFILE)

test: install
	$(PY) -m common.data check mnist freyface cryptopunks
	AE_PROFILE=smoke $(PY) -m pytest --nbval-lax --nbval-current-env --nbval-sanitize-with nbval_sanitize.cfg -p no:cacheprovider

# JupyterLab on the project's .venv with AE_DATA_DIR set as above. The kernel named python3 (what the notebooks
# ask for) is this .venv's, put first on JUPYTER_PATH so that a user-wide python3 kernel cannot shadow it.
# LAB_ARGS passes options, e.g. make lab LAB_ARGS="--no-browser --port 8899".
lab: install
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (autoencoders .venv)" >/dev/null
	JUPYTER_PATH="$(CURDIR)/$(VENV)/share/jupyter" $(VENV)/bin/jupyter lab --notebook-dir="$(CURDIR)" \
		$(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

# The `paper` profile end to end with training capped (60 steps a model) and evaluations cut (200), written to
# build/paper-check/; prints what the full run would take on this machine. Run it before paying for a GPU.
paper-check: install
	$(PY) -m common.reproduce --profile paper --dry-run

# The time table of the last paper-check, again.
paper-estimate: install
	$(PY) -m common.reproduce --profile paper --estimate

bench: install
	$(PY) benchmarks/step_floor.py --compile
	$(PY) benchmarks/train_speed.py
	$(PY) benchmarks/classifier_speed.py

clean-smoke:
	rm -rf build/smoke build/paper-check

# Frees the disk: every trained model (the next run trains them again) and the smoke outputs.
clean-checkpoints:
	rm -rf */checkpoints build/smoke
