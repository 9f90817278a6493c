# syntax=docker/dockerfile:1

# The web dashboard (dashboard/, a Vite app) and the TypeScript SDK it is built with (sdks/typescript, a
# `file:` dependency), built as scripts/build-dashboard.sh builds them: locked installs (`npm ci`), then
# `npm run build` (the SDK's tsc, the dashboard's tsc and vite). Only the built dashboard/dist goes on.
FROM node:22-bookworm-slim AS dashboard
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
WORKDIR /build
COPY sdks/typescript/package.json sdks/typescript/package-lock.json ./sdks/typescript/
RUN cd sdks/typescript && npm ci
COPY dashboard/package.json dashboard/package-lock.json ./dashboard/
RUN cd dashboard && npm ci
COPY sdks/typescript/tsconfig.json ./sdks/typescript/
COPY sdks/typescript/src ./sdks/typescript/src
COPY dashboard/index.html dashboard/tsconfig.json dashboard/vite.config.ts ./dashboard/
COPY dashboard/scripts ./dashboard/scripts
COPY dashboard/src ./dashboard/src
RUN cd dashboard && npm run build && test -f dist/index.html

FROM python:3.11-slim AS base
# Bytecode is compiled at build time (UV_COMPILE_BYTECODE, compileall below): the running user cannot
# write it, so without it every process start would compile each module it imports.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 UV_PYTHON_DOWNLOADS=never UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 UV_PROJECT_ENVIRONMENT=/app/.venv PATH="/app/.venv/bin:$PATH"
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY scripts/install-system-packages.sh ./scripts/
RUN scripts/install-system-packages.sh --runtime && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY alembic.ini ./
COPY migrations ./migrations
COPY src ./src
RUN uv sync --frozen --no-dev && python -m compileall -q src
# The dashboard, served at /dashboard/ (an installed copy does not find the repository's dashboard/dist).
COPY --from=dashboard /build/dashboard/dist ./dashboard/dist
ENV DASHBOARD_DIR=/app/dashboard/dist
RUN useradd --system --uid 10001 backplane && mkdir -p /app/var /app/.secrets && chown -R backplane /app/var /app/.secrets
USER backplane
EXPOSE 8000
CMD ["backplane", "serve", "--host", "0.0.0.0", "--port", "8000"]
