# Entry points: `make demo` runs the main job, `make test` the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BACKENDS := tensorflow jax torch
LOGDIR ?= runs/demo
PYTEST_ARGS ?=
DEMO_ARGS ?=
REPRODUCE_ARGS ?=

.PHONY: venv demo reproduce test lint bench clean

$(VENV)/.installed: setup.cfg constraints.txt pyproject.toml
	@echo ">> creating/updating $(VENV) (keras + tensorflow, jax, torch CPU builds)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -c constraints.txt -e ".[all,examples,test]"
	@echo ">> keras-hub for the transformer tests (without tensorflow-text, which needs full tensorflow)"
	@$(PY) -m pip install --quiet --no-deps -c constraints.txt keras-hub
	@touch $@

venv: $(VENV)/.installed

demo: venv
	@echo ">> running the quick reproduction on MNIST-1D (logs in $(LOGDIR))"
	@KERAS_BACKEND=$${KERAS_BACKEND:-jax} $(PY) -m examples.demo --logdir=$(LOGDIR) $(DEMO_ARGS)

reproduce: venv
	@echo ">> reproducing the three findings on MNIST-1D, 5 seeds (runs/reproduce)"
	@KERAS_BACKEND=$${KERAS_BACKEND:-jax} $(PY) -m examples.reproduce --logdir=runs/reproduce $(REPRODUCE_ARGS)

lint: venv
	@echo ">> ruff"
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

test: lint
	@for b in $(BACKENDS); do \
	  echo ">> pytest with KERAS_BACKEND=$$b"; \
	  KERAS_BACKEND=$$b $(PY) -m pytest -n 2 $(PYTEST_ARGS) || exit 1; \
	done

bench: venv
	@echo ">> benchmarks (each backend in its own process)"
	@$(PY) -m benchmarks.run

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
