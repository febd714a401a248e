# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
export KEDRO_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export MPLBACKEND := Agg
export PYTHONHASHSEED := 0

.PHONY: install run test test-fast lint format bench data dvc lock clean

install: $(VENV)/.installed

# Exact versions from the lock file, then the project itself without touching them.
$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/dvc config --global core.analytics false >/dev/null 2>&1 || true
	touch $@

run: install
	$(BIN)/kedro run --pipeline digits_cnn

test: install
	$(BIN)/pytest -n 2 --dist loadfile -q

test-fast: install
	$(BIN)/pytest -n 2 -q -m "not slow"

lint: install
	$(BIN)/ruff check .


format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Every benchmark (benchmarks/[!_]*.py: each prints its figure last and writes benchmarks/results/<name>.json),
# then the table of all of them, printed and written to BENCHMARKS.md.
# Benchmark-only dependencies (PyTorch Lightning, the second trainer baseline) come from their own
# lock file, constrained by requirements.lock so none of the project's pins moves.
bench: install
	$(PY) -m pip install --quiet -r benchmarks/requirements.lock -c requirements.lock
	@set -e; for b in benchmarks/[!_]*.py; do echo "== $$b"; $(PY) $$b; done
	@$(PY) benchmarks/_table.py

# Fashion-MNIST into data/01_raw (Debian package, or FASHION_MNIST_FROM=dir), tracked by DVC.
data: install
	$(BIN)/deeppipe data fashion-mnist $(if $(FASHION_MNIST_FROM),--from $(FASHION_MNIST_FROM),)

dvc: install
	$(BIN)/deeppipe dvc

lock:
	$(PY) -m pip freeze --exclude-editable | sed 's/^torch==\(.*\)+.*/torch==\1/' > requirements.lock

clean:
	rm -rf data/02_intermediate/* data/03_primary/* data/04_feature/* data/05_model_input/* data/06_models/* data/07_model_output/* data/08_reporting/*
