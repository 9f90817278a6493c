# `make run` and `make test` work on a fresh machine: they install uv and the locked environment
# when missing, make sure PostgreSQL and Redis answer, and create/migrate the database.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
# Resolved when a recipe runs, so a uv installed by `install` is found (as a command or a module).
UV = $$(command -v uv || echo python3 -m uv)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install services migrate run test fuzz lint format bench bench-seats bench-uploads bench-jobs bench-webhooks bench-body-limit bench-login bench-metrics

# Also the Debian packages the agents and the tests need (Tesseract OCR, FFmpeg and the PDF report's font; Chromium,
# Node.js and npm for the browser and TypeScript SDK tests, Go for the Go SDK's), when missing: scripts/install-system-packages.sh.
# Then the web dashboard (dashboard/ built into dashboard/dist, served at /dashboard/), when dashboard/ exists and
# its build is older than its sources: scripts/build-dashboard.sh.
install:
	@scripts/install-system-packages.sh
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@# Bytecode compiled once here: where PYTHONDONTWRITEBYTECODE is set (this machine's shells), every
	@# process would otherwise compile each module it imports at each start (the app: 4 s of CPU, not 2).
	@$(UV) sync --frozen --quiet --compile-bytecode
	@$(UV) run --no-sync python -m compileall -q -j 0 src >/dev/null
	@scripts/build-dashboard.sh

services:
	@scripts/ensure-services.sh

migrate: install services
	$(UV) run backplane migrate

# The API and one arq worker; Ctrl-C stops both.
run: migrate
	@trap 'kill 0' EXIT; \
	$(UV) run backplane worker & \
	$(UV) run backplane serve --host $(HOST) --port $(PORT)

# The suite runs in TEST_WORKERS parallel processes (pytest-xdist; 2, the cores of the CI machine),
# each with its own database and Redis database index (see tests/conftest.py); worksteal hands the
# long tests (e2e, real workers) around so that neither process idles at the end. TEST_WORKERS=0
# runs it serially in one process; PYTEST_ARGS passes more options (e.g. PYTEST_ARGS="tests/webhooks -x").
TEST_WORKERS ?= 2
test: install services
	$(UV) run pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

# tests/test_fuzz.py (schemathesis over the whole OpenAPI document) runs in `make test` with 10 generated
# cases per operation; `make fuzz` runs it alone with FUZZ_MAX_EXAMPLES (default 200) and FUZZ_SEED
# (default: the test's fixed seed; another value explores other inputs, still reproducibly).
FUZZ_MAX_EXAMPLES ?= 200
fuzz: install services
	FUZZ_MAX_EXAMPLES=$(FUZZ_MAX_EXAMPLES) $(if $(FUZZ_SEED),FUZZ_SEED=$(FUZZ_SEED)) \
		$(UV) run pytest -n $(TEST_WORKERS) --dist worksteal tests/test_fuzz.py $(PYTEST_ARGS)

# deploy/'s Kubernetes manifests are checked, strictly (no unknown field), against the JSON schemas of the
# oldest and the newest Kubernetes they are meant for, bundled in the kubernetes-validate package (locked):
# nothing is fetched at lint time.
KUBERNETES_VERSIONS ?= 1.31.0 1.37.0
# The Go SDK's build cache (also tests/e2e/test_sdk_go.py's): in the temp directory, not the user's home.
GO_CACHE ?= $(or $(TMPDIR),/tmp)/backplane-sdk-go-$(shell id -u)

lint: install
	$(UV) run ruff check src tests migrations bench sdks/python
	$(UV) run ruff format --check src tests migrations bench sdks/python
	$(UV) run mypy
	@unformatted=$$(gofmt -l sdks/go); test -z "$$unformatted" || { echo "not gofmt-formatted: $$unformatted"; exit 1; }
	cd sdks/go && GOPROXY=off GOFLAGS= GOCACHE=$(GO_CACHE)/build GOPATH=$(GO_CACHE)/path go vet ./...
	@for version in $(KUBERNETES_VERSIONS); do \
		$(UV) run kubernetes-validate --strict --quiet --kubernetes-version $$version deploy/*.yaml || exit 1; \
	done; echo "deploy/: valid for Kubernetes $(KUBERNETES_VERSIONS)"

format: install
	$(UV) run ruff format src tests migrations bench sdks/python
	$(UV) run ruff check --fix src tests migrations bench sdks/python

# Benchmarks against a server started here with rate limits off and files in a temporary
# STORAGE_DIR (removed afterwards); the server's log goes to var/bench-server.log.
# `make bench` runs bench/seats.py (seat leasing) then bench/uploads.py (200 MB upload and download, a 300 MB
# resumable multipart upload; throughput and server memory); `make bench-uploads` only the latter. BENCH_ARGS passes options to
# seats.py (e.g. --requests 500), UPLOAD_BENCH_ARGS to uploads.py (e.g. --size-mb 400).
BENCH_URL = http://$(HOST):$(PORT)

# $(call bench_server,COMMANDS): COMMANDS run while the server runs; $server is the server's own
# Python process (started from the environment's interpreter, not under `uv run`, so that its id is
# the process holding the memory).
bench_server = set -m; mkdir -p var; \
	health() { python3 -c "import urllib.request; urllib.request.urlopen('$(BENCH_URL)/api/v1/health/', timeout=1)" 2>/dev/null; }; \
	if health; then echo "a server already answers on $(HOST):$(PORT); stop it or pick another PORT=" >&2; exit 1; fi; \
	python=$$($(UV) run --no-sync python -c 'import sys; print(sys.executable)') || exit 1; \
	storage=$$(mktemp -d -t backplane-bench-files.XXXXXX) || exit 1; \
	RATE_LIMITS_ENABLED=false AGENT_TEST_MODE=true STORAGE_DIR="$$storage" "$$python" -m backplane.cli serve --host $(HOST) --port $(PORT) \
		>var/bench-server.log 2>&1 & \
	server=$$!; \
	trap 'kill -TERM -- -$$server 2>/dev/null; wait $$server 2>/dev/null; rm -rf "$$storage"' EXIT; \
	for _ in $$(seq 1 120); do health && break; kill -0 $$server 2>/dev/null || break; sleep 0.5; done; \
	health || { echo "the server did not come up: see var/bench-server.log" >&2; exit 1; }; \
	$(1)

SEATS_BENCH = $(UV) run python bench/seats.py --url $(BENCH_URL) --pid $$server $(BENCH_ARGS)
UPLOADS_BENCH = $(UV) run python bench/uploads.py --url $(BENCH_URL) --pid $$server $(UPLOAD_BENCH_ARGS)

bench: install services
	@scripts/install-bench-tools.sh
	$(UV) run backplane migrate
	@$(call bench_server,$(SEATS_BENCH) && echo && $(UPLOADS_BENCH))

# bench/seats.py alone (wrk and hey installed by scripts/install-bench-tools.sh).
bench-seats: install services
	@scripts/install-bench-tools.sh
	$(UV) run backplane migrate
	@$(call bench_server,$(SEATS_BENCH))

bench-uploads: install services
	$(UV) run backplane migrate
	@$(call bench_server,$(UPLOADS_BENCH))

JOBS_BENCH = $(UV) run python bench/jobs.py --url $(BENCH_URL) --pid $$server $(JOBS_BENCH_ARGS)

# bench/jobs.py: no-op agent jobs through one and two `backplane worker --queues jobs` processes,
# beside arq alone; JOBS_BENCH_ARGS passes options (e.g. --jobs 1000 --workers 1,2,4).
bench-jobs: install services
	$(UV) run backplane migrate
	@$(call bench_server,$(JOBS_BENCH))

WEBHOOKS_BENCH = $(UV) run python bench/webhooks.py --url $(BENCH_URL) $(WEBHOOKS_BENCH_ARGS)

# bench/webhooks.py: httpx posting straight to a loopback receiver (the baseline), then one worker
# delivering to two receivers, a burst of 10,000 events and 1,500 at 100/s, each alone and beside a
# refused and a hanging receiver (rate, p50/p99, CPU per delivery; ratios against the baseline and
# against the pace without a dead receiver). The server and the workers reach loopback receivers
# only with private targets allowed. WEBHOOKS_BENCH_ARGS passes options (e.g. --events 3000
# --rate 50 --dead hanging --workers 2).
bench-webhooks: export WEBHOOK_ALLOW_PRIVATE_TARGETS = true
bench-webhooks: install services
	$(UV) run backplane migrate
	@$(call bench_server,$(WEBHOOKS_BENCH))

BODY_LIMIT_BENCH = $(UV) run python bench/body_limit.py --url $(BENCH_URL) --pid $$server $(BODY_LIMIT_BENCH_ARGS)

# bench/body_limit.py: a 20 MB body to the token endpoint, declared and chunked: time to the 413
# against a two-byte request's, what the server took of it, and its memory growth.
bench-body-limit: install services
	@$(call bench_server,$(BODY_LIMIT_BENCH))

LOGIN_BENCH = $(UV) run python bench/login_burst.py --url $(BENCH_URL) $(LOGIN_BENCH_ARGS)

# bench/login_burst.py: seat heartbeat p99 on one API process while 20 password sign-ins are in flight,
# against its p99 with none, as a ratio; LOGIN_BENCH_ARGS passes options (e.g. --logins 50 --heartbeats 500).
bench-login: install services
	$(UV) run backplane migrate
	@$(call bench_server,$(LOGIN_BENCH))

# bench/metrics_overhead.py: the CPU time of a liveness request with and without the Prometheus request
# metrics, in one process (no server needed).
bench-metrics: install services
	$(UV) run backplane migrate
	$(UV) run python bench/metrics_overhead.py
