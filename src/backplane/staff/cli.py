"""`backplane users find | orgs show | jobs retry | jobs dead-letters | webhooks replay | agents maintenance |
billing sync | check`: the
arguments, and the answers as JSON (`--json`) or as text for a person.

Exit status: 0 done, 1 not found or refused (with the reason), 2 malformed input (argparse's usage
error: an id or date that cannot be one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from backplane.core.config import Settings
from backplane.core.ids import is_id

COMMANDS = ("users", "orgs", "jobs", "webhooks", "agents", "billing", "check")


def _organization_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an organization id (a UUID): {value!r}") from None


def _public_id(prefix: str, what: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if not is_id(value, prefix):
            raise argparse.ArgumentTypeError(f"not a {what} id ({prefix}_ and 24 hex digits): {value!r}")
        return value

    return parse


def aware_datetime(value: str) -> datetime:
    """An argparse type: an ISO 8601 date and time with its time zone."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date and time: {value!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a time zone, e.g. {value}Z or {value}+00:00")
    return moment


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON instead of text")

    users = commands.add_parser("users", help="look users up").add_subparsers(dest="users_command", required=True)
    find = users.add_parser("find", parents=[as_json], help="a user and their organizations, by email (exit 1: none)")
    find.add_argument("email")

    orgs = commands.add_parser("orgs", help="look organizations up").add_subparsers(dest="orgs_command", required=True)
    show = orgs.add_parser(
        "show", parents=[as_json], help="plan, usage this month, licenses and live seats of an organization"
    )
    show.add_argument("organization_id", metavar="ORG_ID", type=_organization_id)

    jobs = commands.add_parser("jobs", help="agent jobs").add_subparsers(dest="jobs_command", required=True)
    retry = jobs.add_parser(
        "retry",
        parents=[as_json],
        help="queue a failed or dead-lettered job again from its first attempt (recorded as a staff action)",
    )
    retry.add_argument("job_id", metavar="JOB_ID", type=_public_id("job", "job"))
    dead = jobs.add_parser("dead-letters", parents=[as_json], help="dead-lettered jobs, newest first")
    dead.add_argument("--org", metavar="ORG_ID", type=_organization_id, help="of this organization only")
    dead.add_argument("--limit", type=int, default=100, metavar="N", help="at most N (default 100)")

    webhooks = commands.add_parser("webhooks", help="outbound webhooks")
    replay = webhooks.add_subparsers(dest="webhooks_command", required=True).add_parser(
        "replay",
        parents=[as_json],
        help="send every event since a moment to an endpoint again, once each (recorded as a staff action)",
        description="Queues one new delivery of each event of the endpoint's organization and mode since --since "
        "that the endpoint subscribes to, through the usual delivery (signing, retries, concurrency limit).",
    )
    replay.add_argument("--endpoint", required=True, metavar="WH_ID", type=_public_id("wh", "webhook endpoint"))
    replay.add_argument("--since", required=True, metavar="ISO8601", type=aware_datetime)

    agents = commands.add_parser("agents", help="agents")
    under = agents.add_subparsers(dest="agents_command", required=True).add_parser(
        "maintenance",
        parents=[as_json],
        help="put an agent under maintenance (its new jobs wait, queued) or end it (recorded as a staff action)",
    )
    under.add_argument("agent_id", metavar="AGENT")
    under.add_argument("state", choices=["on", "off"])
    under.add_argument("--reason", help="why (required with `on`): the waiting jobs show it")
    billing = commands.add_parser("billing", help="subscriptions and Stripe")
    sync = billing.add_subparsers(dest="billing_command", required=True).add_parser(
        "sync",
        parents=[as_json],
        help="compare subscriptions with Stripe and repair drift (exit 1 if Stripe failed for any)",
        description="Fetches each non-free subscription from Stripe and applies what differs (status, plan, seats, "
        "period, cancellation), recorded as the usual subscription.* events; the daily billing.reconcile cron does "
        "the same for all of them.",
    )
    sync.add_argument("--org", metavar="ORG_ID", type=_organization_id, help="this organization only")

    commands.add_parser(
        "check",
        parents=[as_json],
        help="configuration, database, Redis, storage and Stripe reachable (exit 1 if any is not)",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    import asyncpg
    from redis.exceptions import RedisError
    from sqlalchemy.exc import SQLAlchemyError

    from backplane.staff.commands import CommandFailed

    try:
        answer, failed = asyncio.run(_answer(args, settings))
    except CommandFailed as exc:
        print(f"backplane: {exc}", file=sys.stderr)
        return 1
    except (OSError, TimeoutError, RedisError, SQLAlchemyError, asyncpg.PostgresError) as exc:
        first_line = (str(exc).splitlines() or [""])[0]
        print(f"backplane: PostgreSQL or Redis failed: {type(exc).__name__}: {first_line}", file=sys.stderr)
        return 1
    print(json.dumps(answer, indent=2) if args.json else _text(args, answer))
    return 1 if failed else 0


async def _answer(args: argparse.Namespace, settings: Settings) -> tuple[Any, bool]:
    from backplane.staff import operations as ops

    if args.command == "users":
        return await ops.find_user(settings, args.email), False
    if args.command == "orgs":
        return await ops.show_organization(settings, args.organization_id), False
    if args.command == "jobs" and args.jobs_command == "retry":
        return await ops.retry_job(settings, args.job_id), False
    if args.command == "jobs":
        return await ops.dead_letters(settings, args.org, max(1, args.limit)), False
    if args.command == "webhooks":
        return await ops.replay_webhook(settings, args.endpoint, args.since), False
    if args.command == "agents":
        from backplane.staff.commands import CommandFailed

        on = args.state == "on"
        reason = (args.reason or "").strip()
        if on and not 1 <= len(reason) <= 500:
            raise CommandFailed("give --reason (1 to 500 characters) to put an agent under maintenance")
        return await ops.agent_maintenance(settings, args.agent_id, on, reason if on else None), False
    if args.command == "billing":
        synced = await ops.billing_sync(settings, args.org)
        return synced, synced["failed"] > 0
    results = await ops.check(settings)
    return results, not all(result["ok"] for result in results)


def _text(args: argparse.Namespace, answer: Any) -> str:
    if args.command == "users":
        lines = [f"{answer['email']} ({answer['full_name']}) id {answer['id']}"]
        flags = [
            "active" if answer["is_active"] else "deactivated",
            "verified" if answer["email_verified"] else "unverified",
        ]
        lines.append("  " + ", ".join(flags + (["staff"] if answer["is_staff"] else [])))
        lines += [f"  {o['role']:<7} {o['id']}  {o['name']}" for o in answer["organizations"]] or ["  no organization"]
        return "\n".join(lines)
    if args.command == "orgs":
        plan, usage = answer["plan"], answer["usage"]
        limit = plan["jobs_per_month"] if plan["jobs_per_month"] is not None else "unlimited"
        lines = [
            f"{answer['name']} ({answer['slug']}) id {answer['id']}",
            f"  plan {plan['name']}"
            + (f", subscription {answer['subscription']['status']}" if answer["subscription"] else ""),
            f"  jobs this month: {usage['jobs_created']} created, {usage['jobs_counted_by_quota']} counted of {limit}",
            f"  live seats: {answer['live_seats']}",
        ]
        for lic in answer["licenses"]:
            mode = "" if lic["livemode"] else " (test)"
            lines.append(f"  license {lic['id']} {lic['tier']}{mode}: {lic['seats_in_use']}/{lic['seats']} seats, "
                         f"{lic['status']}")  # fmt: skip
        return "\n".join(lines)
    if args.command == "jobs" and args.jobs_command == "retry":
        return f"job {answer['id']} is {answer['status']} again (retried from its first attempt)"
    if args.command == "jobs":
        if not answer:
            return "no dead-lettered jobs"
        return "\n".join(
            f"{job['id']}  {job['agent_id']:<10} org {job['organization_id']}  {job['attempts']} attempts  "
            f"{job['finished_at'] or ''}  {(job['error'] or {}).get('message', '')}"
            for job in answer
        )
    if args.command == "agents":
        if answer["status"] == "maintenance":
            return f"agent {answer['agent_id']} is under maintenance since {answer['since']}: {answer['reason']}"
        return f"agent {answer['agent_id']} is available; {answer['jobs_dispatched']} waiting jobs dispatched"
    if args.command == "webhooks":
        count = len(answer["deliveries"])
        return f"{count} deliver{'y' if count == 1 else 'ies'} to {answer['endpoint_id']} queued"
    if args.command == "billing":
        return _billing_text(answer)
    return "\n".join(f"{'ok  ' if r['ok'] else 'FAIL'} {r['name']:<13} {r['detail']}" for r in answer)


def _billing_text(answer: dict[str, Any]) -> str:
    lines = [f"{answer['checked']} checked, {answer['repaired']} repaired, {answer['failed']} failed"]
    if answer.get("note"):
        lines.append(answer["note"])
    for result in answer["subscriptions"]:
        if result.get("error"):
            lines.append(f"  {result['organization_id']}: {result['error']}")
        for name, (ours, theirs) in result.get("differences", {}).items():
            lines.append(f"  {result['organization_id']}: {name} {ours} -> {theirs}")
    return "\n".join(lines)
