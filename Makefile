# `make run` and `make test` work on a fresh machine: they install uv and the locked environment
# when missing, make sure PostgreSQL and Redis answer, and create/migrate the database.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
# Resolved when a recipe runs, so a uv installed by `install` is found (as a command or a module).
UV = $$(command -v uv || echo python3 -m uv)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install services migrate run test lint format

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
	$(UV) run ruff check src tests migrations
	$(UV) run ruff format --check src tests migrations
	$(UV) run mypy

format: install
	$(UV) run ruff format src tests migrations
	$(UV) run ruff check --fix src tests migrations
