# The two commands a newcomer needs (see README):
#   make figures   regenerate every figure and number on the embedded data
#   make test      run the test suite
#   make test-full run every notebook's full profile and check its paper's claims
#   make test-browser  move sliders in JupyterLab in headless Chromium
#   make lab       open the notebooks in JupyterLab (widget state saved, outputs kept out of git)
# Each creates or updates the virtual environment in .venv by itself.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
OUT    ?= out
PROFILE ?= full
JOBS   ?= 2

.PHONY: figures test test-full test-browser benchmark env lab clean

# torch is installed first, pinned, so that nothing pulls a different build of it.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev,events,browser]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

# JupyterLab saves widget state with notebooks; git strips notebook outputs (nbstripout filter)
env: $(VENV)/.installed
	$(PY) -m snnkit lab --setup-only

lab: env
	$(PY) -m snnkit lab --no-setup

# one torch thread per notebook kernel, as the tests run them: a seed's numbers depend on
# the thread count (float reductions round differently), and the bands are set at one thread
figures: $(VENV)/.installed
	OMP_NUM_THREADS=1 $(PY) -m snnkit run --profile $(PROFILE) --out $(OUT) --jobs $(JOBS)

test: $(VENV)/.installed
	$(PY) -m pytest -n 2 -q

test-full: $(VENV)/.installed
	$(PY) -m pytest -n 2 -q -m full

# JupyterLab in headless Chromium (Debian's chromium package: apt-get install chromium);
# two JupyterLab servers and browsers at once, each kernel on one thread
test-browser: $(VENV)/.installed
	$(PY) -m pytest -n 2 -q -m browser

# the peers (SpikingJelly, norse) come from the 'bench' extra, installed here only
benchmark: $(VENV)/.installed
	echo "torch==2.13.0" > $(VENV)/constraints.txt
	$(PY) -m pip install --quiet -c $(VENV)/constraints.txt -e ".[bench]"
	$(PY) benchmarks/engine.py
	$(PY) benchmarks/pruned.py
	$(PY) benchmarks/growth.py

clean:
	rm -rf $(OUT) .pytest_cache
