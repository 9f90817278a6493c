"""`backplane serve | worker | migrate | license verify FILE`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from backplane.core.config import Settings, get_settings

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

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


class _KeyUnavailable(Exception):
    """The public key to verify with could not be had (exit status 2)."""


def _verifying_key(args: argparse.Namespace) -> Ed25519PublicKey:
    from backplane.licenses import signing

    if args.public_key:
        try:
            return signing.load_public_key(Path(args.public_key).read_bytes())
        except OSError as exc:
            raise _KeyUnavailable(f"cannot read the public key {args.public_key}: {exc.strerror}") from None
        except ValueError as exc:
            raise _KeyUnavailable(f"{args.public_key}: {exc}") from None
    if args.url:
        import httpx

        url = args.url.rstrip("/") + "/api/v1/licenses/public-key/"
        try:
            response = httpx.get(url, timeout=10.0, follow_redirects=True)
            response.raise_for_status()
            return signing.load_public_key(response.json()["public_key_pem"])
        except httpx.HTTPError as exc:
            raise _KeyUnavailable(f"cannot fetch the public key from {url}: {exc}") from None
        except (ValueError, KeyError, TypeError):
            raise _KeyUnavailable(f"{url} did not answer with a license public key") from None
    return signing.public_key(_settings())


def verify_license(args: argparse.Namespace) -> int:
    """`backplane license verify FILE`: 0 valid, 1 not (and why), 2 no public key to check with."""
    from backplane.licenses import signing

    try:
        key = _verifying_key(args)
    except _KeyUnavailable as exc:
        print(f"backplane: {exc}", file=sys.stderr)
        return 2
    try:
        raw = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
        data = json.loads(raw)
    except OSError as exc:
        print(f"backplane: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 1
    except UnicodeDecodeError:
        print(f"backplane: {args.file}: not a license file: not UTF-8 text", file=sys.stderr)
        return 1
    except json.JSONDecodeError as exc:
        print(f"backplane: {args.file}: not a license file: not JSON ({exc})", file=sys.stderr)
        return 1
    result = signing.verify_license_file(data, key)
    if not result.ok:
        print(f"backplane: {args.file}: {result.reason}", file=sys.stderr)
        return 1
    print(result.summary())
    return 0


def _add_license_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    license_ = commands.add_parser("license", help="work with signed license files")
    actions = license_.add_subparsers(dest="license_command", required=True)
    verify = actions.add_parser(
        "verify",
        help="check a license file's signature and dates (exit 0 valid, 1 invalid, 2 no key)",
        description="Check a license file offline. The public key comes from --public-key, from a "
        "running server's /api/v1/licenses/public-key/ with --url, or else from this installation's "
        "LICENSE_SIGNING_KEY.",
    )
    verify.add_argument("file", help="the license file (JSON), or - for standard input")
    source = verify.add_mutually_exclusive_group()
    source.add_argument("--public-key", metavar="PEM_FILE", help="the Ed25519 public key, PEM")
    source.add_argument(
        "--url", metavar="BASE_URL", help="fetch the public key from this server, e.g. https://api.example.com"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="backplane", description="Backplane API service")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="API processes")
    worker = commands.add_parser("worker", help="run the arq workers (short tasks and agent jobs)")
    worker.add_argument(
        "--queues",
        choices=["all", "tasks", "jobs"],
        default="all",
        help="tasks: emails, deliveries, billing; jobs: agent jobs; all: both in one process",
    )
    worker.add_argument(
        "--health-port",
        type=int,
        default=None,
        help="serve GET /health (liveness) and GET /health/ready (PostgreSQL and Redis reachable) on this port",
    )
    worker.add_argument("--health-host", default="127.0.0.1", help="address of the health endpoint")
    commands.add_parser(
        "migrate",
        help="create the database if missing, then upgrade to the latest migration",
    )
    _add_license_commands(commands)
    args = parser.parse_args(argv)
    if args.command == "license":  # offline: needs no configuration unless it uses the local key
        sys.exit(verify_license(args))

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
            proxy_headers=False,  # X-Forwarded-For is read by the app, from TRUSTED_PROXIES only
        )
    elif args.command == "worker":
        from backplane.workers.run import run_workers

        status = asyncio.run(
            run_workers(settings, queues=args.queues, health_host=args.health_host, health_port=args.health_port)
        )
        sys.exit(status)
    elif args.command == "migrate":
        migrate(settings)


if __name__ == "__main__":
    main()
