"""Agent jobs: the API (`/v1/jobs`), their lifecycle in PostgreSQL, and the arq runner."""
