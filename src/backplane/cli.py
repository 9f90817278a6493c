"""`backplane serve | worker | migrate`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from pydantic import ValidationError

from backplane.core.config import Settings, get_settings

logger = logging.getLogger("backplane")


def _settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        messages = "; ".join(str(err["msg"]).removeprefix("Value error, ") for err in exc.errors())
        sys.exit(f"backplane: invalid configuration: {messages}")


def _alembic_config(database_url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    root = Path(__file__).resolve().parents[2]
    ini = root / "alembic.ini"
    if not ini.exists():
        ini = Path.cwd() / "alembic.ini"
    config = Config(str(ini))
    config.attributes["database_url"] = database_url
    return config


async def create_database_if_missing(database_url: str) -> bool:
    """CREATE DATABASE when it does not exist yet; True if it was created."""
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    name = url.database
    assert name, "DATABASE_URL must name a database"
    connection = await asyncpg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password,
        database="postgres",
    )
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        quoted = '"' + name.replace('"', '""') + '"'
        await connection.execute(f"CREATE DATABASE {quoted}")
        return True
    finally:
        await connection.close()


def migrate(settings: Settings) -> None:
    from alembic import command

    if asyncio.run(create_database_if_missing(settings.database.url)):
        logger.info("created database")
    command.upgrade(_alembic_config(settings.database.url), "head")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="backplane", description="Backplane API service")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="API processes")
    commands.add_parser("worker", help="run an arq worker")
    commands.add_parser(
        "migrate",
        help="create the database if missing, then upgrade to the latest migration",
    )
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = _settings()
    if args.command == "serve":
        import uvicorn

        uvicorn.run(
            "backplane.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            proxy_headers=True,
        )
    elif args.command == "worker":
        from arq import run_worker

        from backplane.workers.settings import WorkerSettings, worker_options

        run_worker(WorkerSettings, **worker_options(settings))  # type: ignore[arg-type]
    elif args.command == "migrate":
        migrate(settings)


if __name__ == "__main__":
    main()
