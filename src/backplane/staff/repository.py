from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.auth.models import User
from backplane.events.models import Event
from backplane.jobs.models import Job, JobStatus
from backplane.licenses.models import License
from backplane.organizations.models import Membership, Organization
from backplane.staff.models import StaffAction
from backplane.webhooks.models import WebhookEndpoint


class StaffActionRepository:
    """Staff actions span organizations: read by staff only, never through a tenant's repository."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, action: StaffAction) -> StaffAction:
        self.session.add(action)
        return action

    def select(self) -> Select[tuple[StaffAction]]:
        return select(StaffAction)


# --- the operator's commands: reads across organizations, by id or email -----------------------


async def user_with_organizations(
    session: AsyncSession, email: str
) -> tuple[User, list[tuple[Organization, str]]] | None:
    user = await session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        return None
    rows = await session.execute(
        select(Organization, Membership.role)
        .join(Membership, Membership.organization_id == Organization.id)
        .where(Membership.user_id == user.id)
        .order_by(Membership.created_at)
    )
    return user, [(organization, role) for organization, role in rows.tuples()]


async def licenses_of(session: AsyncSession, organization_id: uuid.UUID) -> list[License]:
    stmt = select(License).where(License.organization_id == organization_id).order_by(License.created_at)
    return list((await session.scalars(stmt)).all())


async def job_counts_since(session: AsyncSession, organization_id: uuid.UUID, since: datetime) -> dict[str, int]:
    stmt = (
        select(Job.status, func.count())
        .where(Job.organization_id == organization_id, Job.created_at >= since)
        .group_by(Job.status)
    )
    return {status: int(count) for status, count in (await session.execute(stmt)).tuples()}


async def find_job(session: AsyncSession, job_id: str) -> Job | None:
    return await session.get(Job, job_id)


async def dead_letters(session: AsyncSession, organization_id: uuid.UUID | None, limit: int) -> list[Job]:
    stmt = select(Job).where(Job.status == JobStatus.DEAD_LETTER)
    if organization_id is not None:
        stmt = stmt.where(Job.organization_id == organization_id)
    return list((await session.scalars(stmt.order_by(Job.finished_at.desc().nulls_last(), Job.id).limit(limit))).all())


async def find_endpoint(session: AsyncSession, endpoint_id: str) -> WebhookEndpoint | None:
    return await session.get(WebhookEndpoint, endpoint_id)


async def events_for(session: AsyncSession, endpoint: WebhookEndpoint, since: datetime) -> list[Event]:
    """The endpoint's organization's events of its mode since `since`, oldest first."""
    stmt = (
        select(Event)
        .where(
            Event.organization_id == endpoint.organization_id,
            Event.livemode == endpoint.livemode,
            Event.created_at >= since,
        )
        .order_by(Event.created_at, Event.id)
    )
    return list((await session.scalars(stmt)).all())


# --- the staff console: searches across organizations ------------------------------------------


def _contains(text: str) -> str:
    """An ILIKE pattern matching `text` anywhere, its own `%`, `_` and `\\` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _as_uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def search_organizations(query: str | None) -> Select[Organization]:
    """Organizations whose name or slug contains `query`, whose id it is, or with a member whose email
    contains it (case-insensitive); all of them without a query."""
    stmt = select(Organization)
    if not query:
        return stmt
    pattern = _contains(query)
    member_matches = (
        select(Membership.id)
        .join(User, User.id == Membership.user_id)
        .where(Membership.organization_id == Organization.id, User.email.ilike(pattern, escape="\\"))
        .exists()
    )
    conditions: list[ColumnElement[bool]] = [
        Organization.name.ilike(pattern, escape="\\"),
        Organization.slug.ilike(pattern, escape="\\"),
    ]
    if (organization_id := _as_uuid(query)) is not None:
        conditions.append(Organization.id == organization_id)
    return stmt.where(or_(*conditions, member_matches))


def search_users(query: str | None) -> Select[User]:
    """Users whose email or name contains `query`, or whose id it is (case-insensitive); all without one."""
    stmt = select(User)
    if not query:
        return stmt
    pattern = _contains(query)
    conditions: list[ColumnElement[bool]] = [
        User.email.ilike(pattern, escape="\\"),
        User.full_name.ilike(pattern, escape="\\"),
    ]
    if (user_id := _as_uuid(query)) is not None:
        conditions.append(User.id == user_id)
    return stmt.where(or_(*conditions))


async def memberships_of_users(
    session: AsyncSession, user_ids: list[uuid.UUID]
) -> list[tuple[uuid.UUID, Organization, str]]:
    """(user id, organization, role) of each of `user_ids`' memberships, oldest membership first."""
    if not user_ids:
        return []
    rows = await session.execute(
        select(Membership.user_id, Organization, Membership.role)
        .join(Organization, Organization.id == Membership.organization_id)
        .where(Membership.user_id.in_(user_ids))
        .order_by(Membership.created_at, Membership.id)
    )
    return [(user_id, organization, role) for user_id, organization, role in rows.all()]


async def members_of(session: AsyncSession, organization_id: uuid.UUID, limit: int) -> list[tuple[Membership, User]]:
    rows = await session.execute(
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.organization_id == organization_id)
        .order_by(Membership.created_at, Membership.id)
        .limit(limit)
    )
    return [(membership, user) for membership, user in rows.all()]


async def member_count(session: AsyncSession, organization_id: uuid.UUID) -> int:
    stmt = select(func.count()).select_from(Membership).where(Membership.organization_id == organization_id)
    return int(await session.scalar(stmt) or 0)
