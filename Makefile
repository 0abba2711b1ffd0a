# The two commands of the README. Each sets up what it needs on a fresh machine first:
#   make train   train the MLP on MNIST (or the offline sample) into runs/mnist
#   make test    the test suite, then the asv suite's check and quick smoke run
VENV ?= .venv
PY := $(VENV)/bin/python
TRAIN_ARGS ?= --out runs/mnist

.PHONY: train test system-deps

train: $(VENV)/.installed-train
	$(VENV)/bin/numbanet train $(TRAIN_ARGS)

test: $(VENV)/.installed-test
	$(PY) -m pytest -q
	$(PY) -m asv machine --yes
	$(PY) -m asv check --python=same
	$(PY) -m asv run --python=same --quick --show-stderr

# Numba's TBB threading layer costs ~12 us per parallel call here; the OpenMP fallback
# costs far more. PyPI's tbb wheel installs where Numba does not look, so take Debian's.
system-deps:
	@ldconfig -p | grep -q 'libtbb.so.12' || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq libtbb12; \
	  else \
	    echo "note: libtbb12 not found; Numba will use its OpenMP layer (slower per call)"; \
	  fi; }

$(VENV)/.installed-train: pyproject.toml | system-deps
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[sample]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | system-deps
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@
