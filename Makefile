# `make run` and `make test` work on a fresh machine: they install uv and the locked environment
# when missing, make sure PostgreSQL and Redis answer, and create/migrate the database.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
# Resolved when a recipe runs, so a uv installed by `install` is found (as a command or a module).
UV = $$(command -v uv || echo python3 -m uv)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install services migrate run test lint format bench

install:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@$(UV) sync --frozen --quiet

services:
	@scripts/ensure-services.sh

migrate: install services
	$(UV) run backplane migrate

# The API and one arq worker; Ctrl-C stops both.
run: migrate
	@trap 'kill 0' EXIT; \
	$(UV) run backplane worker & \
	$(UV) run backplane serve --host $(HOST) --port $(PORT)

test: install services
	$(UV) run pytest

lint: install
	$(UV) run ruff check src tests migrations bench
	$(UV) run ruff format --check src tests migrations bench
	$(UV) run mypy

format: install
	$(UV) run ruff format src tests migrations bench
	$(UV) run ruff check --fix src tests migrations bench

# Seat leasing benchmark (bench/seats.py) against a server started here with rate limits off;
# the server's log goes to var/bench-server.log. BENCH_ARGS passes options, e.g. --requests 500.
bench: install services
	$(UV) run backplane migrate
	@set -m; mkdir -p var; \
	health() { python3 -c "import urllib.request; urllib.request.urlopen('http://$(HOST):$(PORT)/api/v1/health/', timeout=1)" 2>/dev/null; }; \
	if health; then echo "a server already answers on $(HOST):$(PORT); stop it or pick another PORT=" >&2; exit 1; fi; \
	RATE_LIMITS_ENABLED=false $(UV) run backplane serve --host $(HOST) --port $(PORT) >var/bench-server.log 2>&1 & \
	server=$$!; \
	trap 'kill -TERM -- -$$server 2>/dev/null; wait $$server 2>/dev/null' EXIT; \
	for _ in $$(seq 1 120); do health && break; kill -0 $$server 2>/dev/null || break; sleep 0.5; done; \
	health || { echo "the server did not come up: see var/bench-server.log" >&2; exit 1; }; \
	$(UV) run python bench/seats.py --url http://$(HOST):$(PORT) $(BENCH_ARGS)
