"""`backplane serve | worker | migrate | license verify FILE | secrets rotate | staff grant|revoke EMAIL |
licenses issue`, and the operator's `users | orgs | jobs | webhooks | check` (staff/cli.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from backplane.core.config import Settings, get_settings
from backplane.staff import cli as operator_cli

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

logger = logging.getLogger("backplane")


def _settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        problems = [line for err in exc.errors() for line in str(err["msg"]).removeprefix("Value error, ").splitlines()]
        sys.exit("backplane: invalid configuration:\n" + "\n".join(f"  {problem}" for problem in problems))


def _alembic_config(database_url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    root = Path(__file__).resolve().parents[2]
    ini = root / "alembic.ini"
    if not ini.exists():
        ini = Path.cwd() / "alembic.ini"
    config = Config(str(ini))
    config.attributes["database_url"] = database_url
    return config


async def _connect(database_url: str, database: str | None = None) -> Any:
    """A plain asyncpg connection to DATABASE_URL's server (to `database`, else the URL's own)."""
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    return await asyncpg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password,
        database=database or url.database,
    )


async def create_database_if_missing(database_url: str) -> bool:
    """CREATE DATABASE when it does not exist yet; True if it was created."""
    from sqlalchemy.engine import make_url

    name = make_url(database_url).database
    assert name, "DATABASE_URL must name a database"
    connection = await _connect(database_url, "postgres")
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        quoted = '"' + name.replace('"', '""') + '"'
        await connection.execute(f"CREATE DATABASE {quoted}")
        return True
    finally:
        await connection.close()


AUTOVACUUM_OFF = (
    "PostgreSQL runs with autovacuum off: jobs, webhook deliveries and events leave a dead row at each "
    "status change, and statements planned while a table was small keep their plan as it grows, so "
    "both get slower over time; turn autovacuum on (PostgreSQL's default), or run VACUUM (ANALYZE) "
    "on this database regularly"
)


async def check_autovacuum(database_url: str) -> None:
    """Warn (once, at migration time) when the server runs without autovacuum."""
    connection = await _connect(database_url)
    try:
        running = await connection.fetchval("SHOW autovacuum")
    finally:
        await connection.close()
    if running != "on":
        logger.warning(AUTOVACUUM_OFF)


def migrate(settings: Settings) -> None:
    from alembic import command

    if asyncio.run(create_database_if_missing(settings.database.url)):
        logger.info("created database")
    command.upgrade(_alembic_config(settings.database.url), "head")
    asyncio.run(check_autovacuum(settings.database.url))
    moved = asyncio.run(_rename_legacy_redis_keys(settings))
    if moved:
        logger.info("moved %d Redis keys under the %s prefix", moved, "bp:")


async def _rename_legacy_redis_keys(settings: Settings) -> int:
    from backplane.core.keys import rename_legacy_keys
    from backplane.core.redis import create_redis

    redis = create_redis(settings)
    try:
        return await rename_legacy_keys(redis)
    finally:
        await redis.aclose()


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


def _add_staff_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    staff = commands.add_parser("staff", help="mark users as platform staff (the operator's people)")
    actions = staff.add_subparsers(dest="staff_command", required=True)
    for name, text in (("grant", "make an existing user staff"), ("revoke", "make a staff user an ordinary user")):
        action = actions.add_parser(name, help=text, description=f"{text.capitalize()}; exit 1 for an unknown email.")
        action.add_argument("email")
    licenses = commands.add_parser("licenses", help="issue licenses as platform staff")
    license_actions = licenses.add_subparsers(dest="licenses_command", required=True)
    issue = license_actions.add_parser(
        "issue",
        help="issue a license to an organization and print it as JSON",
        description="Prints the new license in the shape GET /api/v1/licenses/{id}/ returns; recorded as a staff "
        "action.",
    )
    issue.add_argument("--organization", required=True, metavar="ORG_ID", type=_uuid)
    issue.add_argument("--tier", required=True, choices=["free", "pro", "enterprise"])
    issue.add_argument("--seats", required=True, type=int, metavar="N")
    issue.add_argument("--expires", type=operator_cli.aware_datetime, metavar="ISO8601", help="default: never expires")
    issue.add_argument("--test", action="store_true", help="a test-mode license (livemode false)")


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an organization id (a UUID): {value!r}") from None


def _run_operator_command(args: argparse.Namespace, settings: Settings) -> int:
    from backplane.core.errors import InvalidInput
    from backplane.staff import commands

    try:
        if args.command == "staff":
            print(asyncio.run(commands.set_staff(settings, args.email, args.staff_command == "grant")))
        else:
            issued = asyncio.run(
                commands.issue_license(settings, args.organization, args.tier, args.seats, args.expires, args.test)
            )
            print(json.dumps(issued, indent=2))
    except commands.CommandFailed as exc:
        print(f"backplane: {exc}", file=sys.stderr)
        return 1
    except InvalidInput as exc:
        problems = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in exc.fields.items())
        print(f"backplane: {problems}", file=sys.stderr)
        return 1
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"backplane: {problems}", file=sys.stderr)
        return 1
    return 0


def rotate_secrets(settings: Settings) -> int:
    """`backplane secrets rotate`: every stored webhook signing secret (and stored Idempotency-Key response)
    encrypted again with the newest of ENCRYPTION_KEYS, in one transaction (0), or nothing changed when a
    signing secret cannot be decrypted (1)."""
    from backplane.core.crypto import Encryptor
    from backplane.core.db import create_engine, create_sessionmaker, unit_of_work
    from backplane.idempotency.service import reencrypt_responses
    from backplane.webhooks.service import UnreadableSecret, reencrypt_secrets

    async def _rotate() -> int:
        engine = create_engine(settings)
        encryptor = Encryptor(settings.encryption_key_ring)
        try:
            async with unit_of_work(create_sessionmaker(engine)) as session:
                count = await reencrypt_secrets(session, encryptor)
                await reencrypt_responses(session, encryptor)  # kept 24 hours; nothing to refuse over
                return count
        finally:
            await engine.dispose()

    try:
        count = asyncio.run(_rotate())
    except UnreadableSecret as exc:
        print(
            f"backplane: cannot decrypt the signing secret of webhook {exc.endpoint_id} with ENCRYPTION_KEYS; "
            "nothing was changed (put the key it was encrypted with back in the list)",
            file=sys.stderr,
        )
        return 1
    print(f"{count} webhook endpoint{'' if count == 1 else 's'} re-encrypted with the newest encryption key")
    return 0


def _add_secrets_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    secrets_ = commands.add_parser("secrets", help="manage secrets stored encrypted (ENCRYPTION_KEYS)")
    actions = secrets_.add_subparsers(dest="secrets_command", required=True)
    actions.add_parser(
        "rotate",
        help="re-encrypt every stored secret with the first of ENCRYPTION_KEYS",
        description="After putting a new key first in ENCRYPTION_KEYS (the old one second) and restarting "
        "the service, re-encrypt every stored webhook signing secret with the new key; then the old key "
        "can be removed. All or nothing; safe to run again.",
    )


CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def available_cores(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """The cores this process may run on, capped by its container's CPU quota (cgroup v2 `cpu.max`,
    e.g. a Kubernetes CPU limit), which `os.cpu_count()` does not see."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return cores
    if quota == "max":
        return cores
    return max(1, min(cores, math.ceil(int(quota) / int(period))))


def serve_workers(workers: int | None, *, production: bool) -> int:
    """`serve --workers`, else one API process per core in production and one elsewhere."""
    if workers is not None:
        return workers
    return available_cores() if production else 1


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"at least 1: {value!r}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="backplane", description="Backplane API service")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers",
        type=_positive,
        default=None,
        help="API processes (default: one per core, within the container's CPU quota, when "
        "ENVIRONMENT=production; 1 otherwise)",
    )
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
    _add_staff_commands(commands)
    _add_secrets_commands(commands)
    operator_cli.add_commands(commands)
    return parser


def _run_on_uvloop(main: Coroutine[Any, Any, int]) -> int:
    """Run the workers on uvloop, as uvicorn runs the API: its transports write to sockets in C, and a
    worker's CPU goes mostly to its PostgreSQL and Redis round trips (about 5% less CPU a job in
    `make bench-jobs`). The standard loop where uvloop does not build (Windows, PyPy)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "license":  # offline: needs no configuration unless it uses the local key
        sys.exit(verify_license(args))

    from backplane.core.logs import configure_logging, logging_config

    settings = _settings()
    configure_logging(settings.log_format_effective)
    if args.command == "serve":
        import uvicorn

        from backplane.core import metrics

        processes = serve_workers(args.workers, production=settings.is_production)
        metrics.prepare_serving(processes, host=args.host, port=settings.metrics_port)
        uvicorn.run(
            "backplane.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=processes,
            log_config=logging_config(settings.log_format_effective),  # in every API process, access log too
            proxy_headers=False,  # X-Forwarded-For is read by the app, from TRUSTED_PROXIES only
            server_header=False,  # no `server: uvicorn`: what runs here is nobody else's business
        )
    elif args.command == "worker":
        from backplane.workers.run import run_workers

        status = _run_on_uvloop(
            run_workers(settings, queues=args.queues, health_host=args.health_host, health_port=args.health_port)
        )
        sys.exit(status)
    elif args.command == "migrate":
        migrate(settings)
    elif args.command in ("staff", "licenses"):
        logging.getLogger().setLevel(logging.WARNING)  # the output is the answer; keep it clean
        sys.exit(_run_operator_command(args, settings))
    elif args.command in operator_cli.COMMANDS:
        logging.getLogger().setLevel(logging.WARNING)  # the output is the answer; keep it clean
        sys.exit(operator_cli.run(args, settings))
    elif args.command == "secrets":
        sys.exit(rotate_secrets(settings))


if __name__ == "__main__":
    main()
