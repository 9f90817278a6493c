"""What a signed-in user is in an organization, cached in Redis for the hot paths (seat leases).

The seat routes answer from Redis alone: the caller's revocation state already lives there
(`auth/revocation.py`), and this module keeps beside it what PostgreSQL would say about the user's
membership, in one versioned hash per user (`core/versioned.py`):

    bp:caller:{user_id}   gen            -> generation, bumped by every invalidation
                          default        -> the user without X-Organization-ID (oldest membership)
                          org:{org_id}   -> the user in that organization

                          key:{key_id}   -> an API key the user created

An entry is `m|<organization id>|<role>` (a member), `n` (an active user who is no member there) or
`x` (no active user). Scripts of the hot paths read it with `CALLER_LUA`; a miss, or anything but a
member with the needed role, sends the request down the full path (`authenticate_jwt`, PostgreSQL),
which gives the exact answer and fills the entry.

A key's entry, `k|<organization id>|<scopes>|<expires ms or 0>|<checked ms>` (scopes by their first
letters: `rw` is read and write), lives in its creator's hash: what changes the creator (removed,
role changed, deactivated) empties it with the rest, and so does a change to the key itself
(revoked). It admits only until the key expires, and only for `KEY_CHECK_MS` after the full path
checked the key, so that the key's `last_used_at` is still recorded to the minute. A key with an IP
allow-list never gets one (the caller's address is checked in the process, on every request).

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

from backplane.access.authenticate import LAST_USED_PRECISION
from backplane.access.principal import Principal
from backplane.api_keys.models import ApiKey
from backplane.auth.models import User
from backplane.core import keys, versioned
from backplane.organizations.models import Membership, Role

CALLER_TTL_MS = 300_000
KEY_CHECK_MS = int(LAST_USED_PRECISION.total_seconds() * 1000)  # `last_used_at` stays exact to that
ROLE_RANK = {Role.viewer: 1, Role.member: 2, Role.admin: 3, Role.owner: 4}

# caller(jti key, cutoff key, sign-in key, caller hash, field, issued at) ->
#   {'ok', organization id, role rank} | {'deny'} (revoked, or no member) | {'miss', generation}
CALLER_LUA = (
    """
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
-- The scope each minimum role rank stands for (read, write, admin, owner), as a key's entry spells it.
local SCOPE_OF_RANK = {'r', 'w', 'a', 'o'}
-- key_caller(creator's caller hash, field, minimum role rank, now ms) -> {'ok', organization id} |
--   {'deny'} (expired, or lacks the scope) | {'miss', generation} (none, or checked too long ago)
local function key_caller(caller_key, field, rank, now)
  local entry = redis.call('HGET', caller_key, field)
  local org, scopes, expires, checked
  if entry then org, scopes, expires, checked = string.match(entry, '^k|([^|]*)|([^|]*)|(%d+)|(%d+)$') end
  if not org or now - tonumber(checked) >= """
    + str(KEY_CHECK_MS)
    + """ then
    return {'miss', redis.call('HGET', caller_key, 'gen') or '0'}
  end
  local scope = SCOPE_OF_RANK[rank]
  if (tonumber(expires) > 0 and now >= tonumber(expires)) or not scope or not string.find(scopes, scope, 1, true) then
    return {'deny'}
  end
  return {'ok', org}
end
"""
)


def field_for(organization_id: uuid.UUID | None) -> str:
    return f"org:{organization_id}" if organization_id is not None else "default"


def key_field(key_id: uuid.UUID) -> str:
    return f"key:{key_id}"


def key_entry_for(principal: Principal, checked_ms: int) -> str | None:
    """What the full path found for an API key, as a cache entry; None for a key never cached (one
    with an IP allow-list)."""
    api_key = principal.api_key
    assert api_key is not None and principal.organization is not None
    if api_key.allowed_ips:
        return None
    scopes = "".join(sorted(scope.value[0] for scope in principal.scopes))
    expires = int(api_key.expires_at.timestamp() * 1000) if api_key.expires_at is not None else 0
    return f"k|{principal.organization.id}|{scopes}|{expires}|{checked_ms}"


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
def _caller_changes(session: Session, _context: Any) -> None:
    users: set[uuid.UUID] = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Membership):
            users.add(obj.user_id)
        elif isinstance(obj, ApiKey) and obj.created_by_id is not None and obj not in session.new:
            users.add(obj.created_by_id)  # revoked or edited: its entry in its creator's hash goes (a new key has none)
        elif isinstance(obj, User) and obj in session.dirty:
            users.add(obj.id)
    if users:
        invalidate_after_commit(session, users)
