# The two commands of the README. Each sets up what it needs on a fresh machine first:
#   make train   train the MLP on MNIST (or the offline sample) into runs/mnist
#   make test    the test suite, then the asv suite's check and quick smoke run
VENV ?= .venv
PY := $(VENV)/bin/python
TRAIN_ARGS ?= --out runs/mnist

.PHONY: train test

train: $(VENV)/.installed-train
	$(VENV)/bin/numbanet train $(TRAIN_ARGS)

test: $(VENV)/.installed-test
	$(PY) -m pytest -q
	$(PY) -m asv machine --yes
	$(PY) -m asv check --python=same
	$(PY) -m asv run --python=same --quick --show-stderr

$(VENV)/.installed-train: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[sample]'
	touch $@

$(VENV)/.installed-test: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@
