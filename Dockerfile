# syntax=docker/dockerfile:1
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 UV_PYTHON_DOWNLOADS=never UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/app/.venv PATH="/app/.venv/bin:$PATH"
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY scripts/install-system-packages.sh ./scripts/
RUN scripts/install-system-packages.sh --runtime && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY alembic.ini ./
COPY migrations ./migrations
COPY src ./src
RUN uv sync --frozen --no-dev
RUN useradd --system --uid 10001 backplane && mkdir -p /app/var /app/.secrets && chown -R backplane /app/var /app/.secrets
USER backplane
EXPOSE 8000
CMD ["backplane", "serve", "--host", "0.0.0.0", "--port", "8000"]
