# LuxMail — two commands: `make run` starts everything, `make test` proves it.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
DEV := LUXMAIL_ENV=dev

.PHONY: run test test-serial test-fast check install format vendor bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "LuxMail needs Python 3.11 or newer (found " + sys.version.split()[0] + ")")'
	@test -x $(BIN)/python || $(PYTHON) -c 'import ensurepip' 2>/dev/null || { echo "$(PYTHON) cannot create virtual environments: install python3-venv (Debian/Ubuntu: apt-get install python3-venv)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

## make run — the whole product on embedded defaults (SQLite, file broker, SMTP sink, demo data)
run: $(STAMP)
	$(DEV) $(BIN)/python manage.py migrate --noinput
	$(DEV) $(BIN)/python manage.py demo_setup
	$(DEV) PATH=$(BIN):$$PATH $(BIN)/python -m luxmail.devrun

## make check — lint, format check, type check, import layers (docs/architecture.md)
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy luxmail contacts campaigns portal reporting
	$(BIN)/lint-imports

## make test — the checks, then the whole pytest suite, in parallel (pytest-xdist)
# Each xdist worker has its own test database, throwaway Redis, ports and var/ directory
# (luxmail/testing.py); the suite waits on I/O (PostgreSQL, SMTP, Celery, Chromium), so
# it runs more workers than the 2 cores CI has: TEST_WORKERS=3 took 4.6 min, 2 took 6 min (1,231 tests)
# (docs/operations.md, "Running the tests"). TEST_WORKERS=0 runs it in one process.
# pytest exits 5 when it collected no tests: that proves nothing, so it fails too.
# Bytecode: `uv pip install --compile-bytecode` writes the .pyc files of the dependencies
# once, and pytest runs with PYTHONDONTWRITEBYTECODE cleared (machines that set it made
# every test process and every Celery/manage.py child compile Django and the rest from
# source, ~3 s of CPU each; pytest also caches its rewritten test modules then).
TEST_WORKERS ?= 3
PYTEST_PARALLEL = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadgroup)
define run_pytest
@PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest $(1); rc=$$?; \
if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests - failing"; fi; \
exit $$rc
endef

test: check
	$(call run_pytest,$(PYTEST_PARALLEL) $(PYTEST_ARGS))

## make test-serial — the same suite in one process (to tell an isolation bug from a real one)
test-serial: check
	$(call run_pytest,$(PYTEST_ARGS))

## make test-fast — unit tests only: no Celery worker, browser, SMTP server or benchmark-sized data
test-fast: $(STAMP)
	$(call run_pytest,$(PYTEST_PARALLEL) -m "not (celery or browser or smtp or slow)" $(PYTEST_ARGS))

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## make vendor — refresh the committed browser assets from the npm registry
vendor:
	static/vendor/update.sh

clean:
	rm -rf $(VENV) var/staticfiles var/test.sqlite3
