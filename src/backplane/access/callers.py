"""What a signed-in user is in an organization, cached in Redis for the hot paths (seat leases).

The seat routes answer from Redis alone: the caller's revocation state already lives there
(`auth/revocation.py`), and this module keeps beside it what PostgreSQL would say about the user's
membership, in one versioned hash per user (`core/versioned.py`):

    bp:caller:{user_id}   gen            -> generation, bumped by every invalidation
                          default        -> the user without X-Organization-ID (oldest membership)
                          org:{org_id}   -> the user in that organization

An entry is `m|<organization id>|<role>` (a member), `n` (an active user who is no member there) or
`x` (no active user). Scripts of the hot paths read it with `CALLER_LUA`; a miss, or anything but a
member with the needed role, sends the request down the full path (`authenticate_jwt`, PostgreSQL),
which gives the exact answer and fills the entry.

Every change to what an entry says invalidates the user's hash once its transaction commits: ORM
hooks see memberships added, changed or removed and users (de)activated or made staff, and deleting
an organization invalidates its members (the database's cascade is invisible to the ORM). So removal,
role change and deactivation take effect on the very next request, as they did when every request
read PostgreSQL; a lost invalidation (Redis unreachable right after the commit) lasts at most
`CALLER_TTL_MS`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from backplane.access.principal import Principal
from backplane.auth.models import User
from backplane.core import keys, versioned
from backplane.organizations.models import Membership, Role

CALLER_TTL_MS = 300_000
ROLE_RANK = {Role.viewer: 1, Role.member: 2, Role.admin: 3, Role.owner: 4}

# caller(jti key, cutoff key, sign-in key, caller hash, field, issued at) ->
#   {'ok', organization id, role rank} | {'deny'} (revoked, or no member) | {'miss', generation}
CALLER_LUA = """
local RANKS = {viewer = 1, member = 2, admin = 3, owner = 4}
local function caller(jti_key, cutoff_key, sid_key, caller_key, field, issued_at)
  local revoked = redis.call('MGET', jti_key, cutoff_key, sid_key)
  if revoked[1] or revoked[3] then return {'deny'} end
  if revoked[2] and tonumber(issued_at) <= tonumber(revoked[2]) then return {'deny'} end
  local entry = redis.call('HGET', caller_key, field)
  if not entry then return {'miss', redis.call('HGET', caller_key, 'gen') or '0'} end
  local kind, org, role = string.match(entry, '^(%a)|?([^|]*)|?([^|]*)$')
  if kind ~= 'm' then return {'deny'} end
  return {'ok', org, RANKS[role] or 0}
end
"""


def field_for(organization_id: uuid.UUID | None) -> str:
    return f"org:{organization_id}" if organization_id is not None else "default"


def entry_for(principal: Principal | None) -> str:
    """What the full path found, as a cache entry (None: no active user)."""
    if principal is None or principal.user is None or not principal.user.is_active:
        return "x"
    if principal.organization is None or principal.role is None:
        return "n"
    return f"m|{principal.organization.id}|{principal.role}"


async def fill(redis: Redis, user_id: uuid.UUID, field: str, generation: str, entry: str) -> None:
    await versioned.fill(redis, keys.caller(user_id), generation, {field: entry}, CALLER_TTL_MS)


def invalidate_after_commit(session: AsyncSession | Session, user_ids: Iterable[uuid.UUID]) -> None:
    versioned.invalidate_after_commit(session, (keys.caller(u) for u in user_ids))


async def invalidate_members_after_commit(session: AsyncSession, organization_id: uuid.UUID) -> None:
    """Before deleting an organization: its members' entries go once the deletion commits."""
    rows = await session.scalars(select(Membership.user_id).where(Membership.organization_id == organization_id))
    invalidate_after_commit(session, rows.all())


@event.listens_for(Session, "after_flush")
def _membership_changes(session: Session, _context: Any) -> None:
    users: set[uuid.UUID] = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Membership):
            users.add(obj.user_id)
        elif isinstance(obj, User) and obj in session.dirty:
            users.add(obj.id)
    if users:
        invalidate_after_commit(session, users)
