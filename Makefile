# The README names these targets. `make run` and `make test` each install what they need.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PRVIZ  := $(VENV)/bin/prviz
STAMP  := $(VENV)/.installed
DAYS   ?= 7
START  ?= 2025-01-01

.PHONY: run test dev dashboard lint format bench clean browser

$(STAMP): pyproject.toml
	@command -v python3 >/dev/null || { echo "python3 (3.11+) is needed" >&2; exit 1; }
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

## run: demo captures + labels for a week -> local Spark -> curves -> dashboard, then a summary table
run: $(STAMP)
	$(PRVIZ) run --start $(START) --days $(DAYS)

## test: the whole suite (CI runs exactly this)
test: $(STAMP) browser
	$(PY) -m pytest -q

## dev: the Dagster UI on 127.0.0.1:3000
dev: $(STAMP)
	$(PRVIZ) check-java
	PRVIZ_HOME=$${PRVIZ_HOME:-$(CURDIR)/var} DAGSTER_HOME=$${DAGSTER_HOME:-$(CURDIR)/var/dagster_home} \
		sh -c 'mkdir -p "$$DAGSTER_HOME" && exec $(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000'

## dashboard: serve the embedded read-only dashboard on 127.0.0.1
dashboard: $(STAMP)
	$(PRVIZ) serve

## browser: best effort, Debian's headless Chromium for the dashboard tests (skipped if it cannot be had)
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		{ echo "installing Debian's chromium for the browser tests"; \
		  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		  || echo "chromium could not be installed: the browser tests will be skipped"; }; } || true

lint: $(STAMP)
	$(VENV)/bin/ruff check prviz prviz_tests bench
	$(VENV)/bin/ruff format --check prviz prviz_tests bench

format: $(STAMP)
	$(VENV)/bin/ruff format prviz prviz_tests bench
	$(VENV)/bin/ruff check --fix prviz prviz_tests bench

bench: $(STAMP)
	$(PY) bench/run_bench.py

clean:
	rm -rf var .pytest_cache .ruff_cache spark-warehouse
