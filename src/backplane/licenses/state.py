"""A license's seats, status, expiry and mode, kept in Redis beside its leases.

The seat scripts (`leases.py`) decide from this alone whether a license may hand out or keep a seat,
so acquire, heartbeat and release never read PostgreSQL for the license. One versioned hash per
license (`core/versioned.py`), and its key's index:

    bp:license:{id}          gen, org, live (1/0), seats, key, status (active|suspended|inactive), exp (ms or '')
    bp:license-key:{sha256}  the license id (a key never changes; the index only saves the lookup)

A license changed through the ORM (suspended, reactivated, seats or expiry changed, deleted) has its
hash invalidated once the change commits; the next seat request misses, reads PostgreSQL once and
fills it again. Expiry needs no invalidation: the script compares `exp` with Redis's clock.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from sqlalchemy import event
from sqlalchemy.orm import Session

from backplane.core import keys, versioned
from backplane.core.security import sha256_hex
from backplane.licenses.models import License

STATE_TTL_MS = 300_000  # also the longest a lost invalidation (Redis away at the commit) can last
KEY_INDEX_TTL_SECONDS = 86_400

# license(state key, organization id, livemode '1'/'0', now ms) ->
#   {'ok', seats, key} | {'unusable', seats, key} | {'miss', generation} | {'elsewhere'} (another organization's
#   or mode's license)
LICENSE_LUA = """
local function license(state_key, org, livemode, now)
  local s = redis.call('HMGET', state_key, 'org', 'live', 'seats', 'key', 'status', 'exp')
  if not s[1] then return {'miss', redis.call('HGET', state_key, 'gen') or '0'} end
  if s[1] ~= org or s[2] ~= livemode then return {'elsewhere'} end
  if s[5] ~= 'active' or (s[6] ~= '' and tonumber(s[6]) <= now) then return {'unusable', tonumber(s[3]), s[4]} end
  return {'ok', tonumber(s[3]), s[4]}
end
"""


def key_index(canonical_key: str) -> str:
    return keys.license_by_key(sha256_hex(canonical_key))


def _fields(license_: License) -> dict[str, str]:
    if license_.suspended_at is not None:
        status = "suspended"
    elif not license_.is_active:
        status = "inactive"
    else:
        status = "active"
    expires = "" if license_.expiry_date is None else str(int(license_.expiry_date.timestamp() * 1000))
    return {
        "org": str(license_.organization_id),
        "live": "1" if license_.livemode else "0",
        "seats": str(license_.seats),
        "key": license_.key_string,
        "status": status,
        "exp": expires,
    }


async def fill(redis: Redis, license_: License, generation: str) -> None:
    """Copy the license read from PostgreSQL, unless it changed since `generation` was read."""
    await versioned.fill(redis, keys.license_state(license_.id), generation, _fields(license_), STATE_TTL_MS)
    await redis.set(key_index(license_.key_string), str(license_.id), ex=KEY_INDEX_TTL_SECONDS)


@event.listens_for(Session, "after_flush")
def _license_changes(session: Session, _context: Any) -> None:
    changed = [obj.id for obj in (*session.dirty, *session.deleted) if isinstance(obj, License)]
    if changed:
        versioned.invalidate_after_commit(session, (keys.license_state(i) for i in changed))
