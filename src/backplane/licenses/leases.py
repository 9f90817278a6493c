"""Seat leases in Redis: each live lease is a key with a TTL, counted per license atomically.

Per license `L`:
  `lic:{L}:leases`  ZSET  session id -> expiry (ms, Redis clock)   -- what counts against seats
  `lic:{L}:hw`      HASH  hardware id -> session id                -- same machine, same session
  `lic:{L}:meta`    HASH  session id -> {hw, acq, hb, n} (JSON)     -- history until written to PG
  `lease:{S}`       HASH  {license, org, hw} with PEXPIRE ttl       -- the live lease itself
Global:
  `leases:expiry`   ZSET  "L:S" -> expiry                          -- lets the sweeper find licenses
  `leases:ended`    LIST  JSON of ended sessions                    -- drained into PostgreSQL
  `leases:epoch`    STRING                                          -- the leases here are complete

Acquire, heartbeat and release are each one Lua script, so no interleaving of API processes can
put more live leases on a license than it has seats. Expired leases are swept inside acquire (so
a dead machine's seat is free to the next caller at once) and by a cron task.
Every operation is O(log n) in the license's own leases; heartbeat cost does not depend on how
many leases exist in total.

A Redis that lost its data (restarted without persistence, flushed, failed over to an empty
replica) has no `leases:epoch`. Acquire then answers "not restored" instead of handing out seats
that PostgreSQL's open sessions still hold, and a session id Redis does not know is not declared
gone; `Leases` first has its `restore` callback rebuild the leases from PostgreSQL
(`licenses/recovery.py`), then does the operation.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from backplane.access.admission import ADMIT_LUA
from backplane.core import keys
from backplane.core.errors import ServiceUnavailable
from backplane.core.redis import ScriptBatcher, run_scripts
from backplane.licenses.state import LICENSE_LUA

EXPIRY_INDEX = keys.LEASE_EXPIRY_INDEX
# Expired leases one script call ends at most, and sessions one restore call rebuilds at most. A
# script holds Redis, every organization's requests with it, while it runs: a fleet of 100,000
# leases ending in one call held it about a second. Live counts never wait for a sweep (ZCOUNT of
# the leases not yet due), so an expired lease left for a later step holds no seat.
SWEEP_STEP = 200
RESTORE_STEP = 1000
ENDED_LOG = keys.LEASES_ENDED
EPOCH = keys.LEASES_EPOCH
LEASES_PREFIX = keys.LEASES_PREFIX
LEASE_PREFIX = keys.LEASE_PREFIX

# The leases' operations as Lua functions, each script below one short call of them. A license's
# own keys are built from `prefix` (LEASES_PREFIX) and its id; `expiry` and `ended` are the global
# index and log, `lease_prefix` the live lease keys' ("lease:").
_LIB = (
    f"""
local SWEEP_STEP = {SWEEP_STEP}
"""
    + """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function license_keys(prefix, lid)
  return prefix .. lid .. ':leases', prefix .. lid .. ':hw', prefix .. lid .. ':meta'
end
-- the license's live leases: those not yet due, whether or not the due ones are swept
local function live_count(zkey, now)
  return redis.call('ZCOUNT', zkey, '(' .. now, '+inf')
end
-- ends at most SWEEP_STEP of the license's due leases (the oldest first) -> how many
local function sweep(lid, prefix, expiry, ended, now)
  local zkey, hwkey, metakey = license_keys(prefix, lid)
  local dead = redis.call('ZRANGEBYSCORE', zkey, '-inf', now, 'LIMIT', 0, SWEEP_STEP)
  for _, sid in ipairs(dead) do
    redis.call('ZREM', zkey, sid)
    redis.call('ZREM', expiry, lid .. ':' .. sid)
    local raw = redis.call('HGET', metakey, sid)
    local meta = raw and cjson.decode(raw) or {}
    if meta.hw and redis.call('HGET', hwkey, meta.hw) == sid then redis.call('HDEL', hwkey, meta.hw) end
    redis.call('HDEL', metakey, sid)
    redis.call('RPUSH', ended, cjson.encode({sid = sid, lic = lid, reason = 'expired', at = now,
      hb = meta.hb, n = meta.n}))
  end
  return #dead
end
-- -> {session id or '' (no seat free), created 1/0, live, expires}
local function take(lid, prefix, expiry, ended, lease_prefix, sid, hw, seats, ttl, org, now)
  local zkey, hwkey, metakey = license_keys(prefix, lid)
  sweep(lid, prefix, expiry, ended, now)
  local expires = now + ttl
  local existing = redis.call('HGET', hwkey, hw)
  local held = existing and redis.call('ZSCORE', zkey, existing)
  if held and tonumber(held) > now then
    redis.call('ZADD', zkey, expires, existing)
    redis.call('ZADD', expiry, expires, lid .. ':' .. existing)
    redis.call('PEXPIRE', lease_prefix .. existing, ttl)
    return {existing, 0, live_count(zkey, now), expires}
  end
  local live = live_count(zkey, now)
  if live >= seats then return {'', 0, live, 0} end
  redis.call('ZADD', zkey, expires, sid)
  redis.call('HSET', hwkey, hw, sid)
  redis.call('HSET', metakey, sid, cjson.encode({hw = hw, acq = now, hb = cjson.null, n = 0}))
  redis.call('ZADD', expiry, expires, lid .. ':' .. sid)
  redis.call('HSET', lease_prefix .. sid, 'license', lid, 'org', org, 'hw', hw)
  redis.call('PEXPIRE', lease_prefix .. sid, ttl)
  return {sid, 1, live + 1, expires}
end
-- -> {1, expires, live} | {0, 0, 0} (no such live lease)
local function beat(lid, prefix, expiry, lease_key, sid, ttl, now)
  local zkey, _, metakey = license_keys(prefix, lid)
  local score = redis.call('ZSCORE', zkey, sid)
  if (not score) or tonumber(score) <= now then return {0, 0, 0} end
  local expires = now + ttl
  redis.call('ZADD', zkey, expires, sid)
  redis.call('ZADD', expiry, expires, lid .. ':' .. sid)
  redis.call('PEXPIRE', lease_key, ttl)
  local raw = redis.call('HGET', metakey, sid)
  if raw then
    local meta = cjson.decode(raw)
    meta.hb = now
    meta.n = (tonumber(meta.n) or 0) + 1
    redis.call('HSET', metakey, sid, cjson.encode(meta))
  end
  return {1, expires, live_count(zkey, now)}
end
-- -> {released 1/0, live}
local function give_back(lid, prefix, expiry, ended, lease_key, sid, reason, now)
  local zkey, hwkey, metakey = license_keys(prefix, lid)
  local score = redis.call('ZSCORE', zkey, sid)
  redis.call('DEL', lease_key)
  if (not score) or tonumber(score) <= now then return {0, live_count(zkey, now)} end
  redis.call('ZREM', zkey, sid)
  redis.call('ZREM', expiry, lid .. ':' .. sid)
  local raw = redis.call('HGET', metakey, sid)
  local meta = raw and cjson.decode(raw) or {}
  if meta.hw and redis.call('HGET', hwkey, meta.hw) == sid then redis.call('HDEL', hwkey, meta.hw) end
  redis.call('HDEL', metakey, sid)
  redis.call('RPUSH', ended, cjson.encode({sid = sid, lic = lid, reason = reason, at = now, hb = meta.hb, n = meta.n}))
  return {1, live_count(zkey, now)}
end
"""
)

# KEYS: expiry index, ended log, epoch; ARGV: license id, new session id, hardware id, seats, ttl ms,
# organization id, LEASES_PREFIX, lease key prefix
# -> {session id or '', created (1/0, -1: the leases are not restored yet), live, expires}
_ACQUIRE = (
    _LIB
    + """
if redis.call('EXISTS', KEYS[3]) == 0 then return {'', -1, 0, 0} end
return take(ARGV[1], ARGV[7], KEYS[1], KEYS[2], ARGV[8], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]),
  ARGV[6], now_ms())
"""
)

# KEYS: expiry index, lease key; ARGV: license id, session id, ttl ms, LEASES_PREFIX
_HEARTBEAT = (
    _LIB
    + """
return beat(ARGV[1], ARGV[4], KEYS[1], KEYS[2], ARGV[2], tonumber(ARGV[3]), now_ms())
"""
)

# KEYS: expiry index, ended log, lease key; ARGV: license id, session id, reason, LEASES_PREFIX
_RELEASE = (
    _LIB
    + """
return give_back(ARGV[1], ARGV[4], KEYS[1], KEYS[2], KEYS[3], ARGV[2], ARGV[3], now_ms())
"""
)

# KEYS: expiry index, ended log; ARGV: license id, LEASES_PREFIX
_SWEEP_ONE = (
    _LIB
    + """
return sweep(ARGV[1], ARGV[2], KEYS[1], KEYS[2], now_ms())
"""
)

# The seat routes' scripts: the caller admitted (`access/admission.py`: KEYS[1..5], ARGV[1..6]), the
# license's state checked (`state.py`) and the operation done, in one call. Replies:
# {code, limit decision x5, values...} with code 'ok', or what the route must do first: 'miss'/'deny'
# (resolve the caller), 'limited', 'restore' (rebuild the leases), 'state?' (copy the license into
# Redis), 'key?' (index its key), 'unusable', 'elsewhere' (another organization's or mode's license),
# 'gone' (no such live lease of the caller's organization).
_SEAT_LIB = (
    ADMIT_LUA
    + LICENSE_LUA
    + _LIB
    + """
local function state_reply(lic, decision, lid)
  if lic[1] == 'miss' then return reply('state?', decision, {lid, lic[2]}) end
  return reply(lic[1], decision, {lid})
end
"""
)

# KEYS[6..9]: key index, expiry index, ended log, epoch
# ARGV[7..12]: new session id, hardware id, ttl ms, LEASES_PREFIX, license state prefix, lease key prefix
# ok -> {session id or '', created, live, expires, seats, license key, license id, organization id}
_ACQUIRE_AS = (
    _SEAT_LIB
    + """
local now = now_ms()
local org, decision = admit(now)
if not org then return decision end
local lid = redis.call('GET', KEYS[6])
if not lid then return reply('key?', decision) end
local lic = license(ARGV[11] .. lid, org, ARGV[4], now)
if lic[1] ~= 'ok' then return state_reply(lic, decision, lid) end
if redis.call('EXISTS', KEYS[9]) == 0 then return reply('restore', decision) end
local got = take(lid, ARGV[10], KEYS[7], KEYS[8], ARGV[12], ARGV[7], ARGV[8], lic[2], tonumber(ARGV[9]), org, now)
return reply('ok', decision, {got[1], got[2], got[3], got[4], lic[2], lic[3], lid, org})
"""
)

# Heartbeat and release: KEYS[6..9]: lease key, expiry index, ended log, epoch; ARGV[7..10]: session id,
# ttl ms (heartbeat) or reason (release), LEASES_PREFIX, license state prefix.
_OWN_LEASE = """
-- The caller's lease and its license: license id, license state, limit decision | nil, the reply.
-- `unusable_ok`: a suspended or expired license's lease is the caller's all the same (release).
local function own_lease(now, unusable_ok)
  local org, decision = admit(now)
  if not org then return nil, decision end
  local lease = redis.call('HMGET', KEYS[6], 'license', 'org')
  if not lease[1] then
    if redis.call('EXISTS', KEYS[9]) == 0 then return nil, reply('restore', decision) end
    return nil, reply('gone', decision)
  end
  if lease[2] ~= org then return nil, reply('gone', decision) end
  local lic = license(ARGV[10] .. lease[1], org, ARGV[4], now)
  if lic[1] ~= 'ok' and not (unusable_ok and lic[1] == 'unusable') then
    return nil, state_reply(lic, decision, lease[1])
  end
  return lease[1], lic, decision
end
local now = now_ms()
"""

# ok -> {expires, live, seats, license key, license id}
_HEARTBEAT_AS = (
    _SEAT_LIB
    + _OWN_LEASE
    + """
local lid, lic, decision = own_lease(now, false)
if not lid then return lic end
local hb = beat(lid, ARGV[9], KEYS[7], KEYS[6], ARGV[7], tonumber(ARGV[8]), now)
if hb[1] == 0 then return reply('gone', decision) end
return reply('ok', decision, {hb[2], hb[3], lic[2], lic[3], lid})
"""
)

# ok -> {live, seats, license id}
_RELEASE_AS = (
    _SEAT_LIB
    + _OWN_LEASE
    + """
local lid, lic, decision = own_lease(now, true)
if not lid then return lic end
local out = give_back(lid, ARGV[9], KEYS[7], KEYS[8], KEYS[6], ARGV[7], ARGV[8], now)
if out[1] == 0 then return reply('gone', decision) end
return reply('ok', decision, {out[2], lic[2], lid})
"""
)

# KEYS: leases -> how many live (O(log n): the count never reads the leases themselves)
_COUNT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
"""

# KEYS: leases, meta; ARGV: limit -> up to `limit` live sessions with their metadata
_LIVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rows = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[1]))
local out = {}
for i = 1, #rows, 2 do
  out[#out + 1] = rows[i]
  out[#out + 1] = rows[i + 1]
  out[#out + 1] = redis.call('HGET', KEYS[2], rows[i]) or '{}'
end
return out
"""


# Leases rebuilt for one license from its open sessions, newest first. A session whose machine
# already has a live lease, or for which no seat is left, ends ('expired') through the ended log.
# KEYS: leases, hw, meta, expiry index, ended log, lease key prefix ("lease:")
# ARGV: license id, organization id, seats, ttl ms, then (session id, hardware id, acquired ms) triples
# -> {restored, ended}
_RESTORE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lid, org, seats, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local expires = now + ttl
local restored, ended = 0, 0
for i = 5, #ARGV, 3 do
  local sid, hw, acq = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  if not redis.call('ZSCORE', KEYS[1], sid) then
    local holder = redis.call('HGET', KEYS[2], hw)
    local held = holder and redis.call('ZSCORE', KEYS[1], holder)
    if (held and tonumber(held) > now) or redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf') >= seats then
      redis.call('RPUSH', KEYS[5], cjson.encode({sid = sid, lic = lid, reason = 'expired', at = now, n = 0}))
      ended = ended + 1
    else
      redis.call('ZADD', KEYS[1], expires, sid)
      redis.call('HSET', KEYS[2], hw, sid)
      redis.call('HSET', KEYS[3], sid, cjson.encode({hw = hw, acq = acq, hb = cjson.null, n = 0}))
      redis.call('ZADD', KEYS[4], expires, lid .. ':' .. sid)
      redis.call('HSET', KEYS[6] .. sid, 'license', lid, 'org', org, 'hw', hw)
      redis.call('PEXPIRE', KEYS[6] .. sid, ttl)
      restored = restored + 1
    end
  end
end
return {restored, ended}
"""


class SeatsRestoring(ServiceUnavailable):
    default_message = "Seat leases are being restored after a Redis restart. Retry in a few seconds."


@dataclass(frozen=True, slots=True)
class OpenSession:
    """A session PostgreSQL has not seen end, as a restore needs it."""

    session_id: uuid.UUID
    hardware_id: str
    acquired_at: datetime


Restore = Callable[["Leases"], Awaitable[None]]


_keys = keys.license_leases
lease_key = keys.lease


def _time(ms: int | str | None) -> datetime | None:
    return datetime.fromtimestamp(int(ms) / 1000, UTC) if ms not in (None, "", "null") else None


@dataclass(frozen=True, slots=True)
class Acquired:
    session_id: uuid.UUID | None  # None: no seat free
    created: bool
    live: int
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class LeaseOwner:
    license_id: uuid.UUID
    organization_id: uuid.UUID
    hardware_id: str


@dataclass(frozen=True, slots=True)
class LiveLease:
    session_id: uuid.UUID
    hardware_id: str
    acquired_at: datetime | None
    last_heartbeat_at: datetime | None
    heartbeats: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class EndedLease:
    session_id: uuid.UUID
    license_id: uuid.UUID
    reason: str
    ended_at: datetime
    last_heartbeat_at: datetime | None
    heartbeats: int


class Leases:
    """`restore` rebuilds the leases from PostgreSQL when Redis lost them; without one (tools, tests of
    Redis alone) a Redis without leases is simply taken as complete. `batch`: how the seat routes'
    scripts are sent (the API's batches go through a client of their own, `app.py`); by default, in
    batches through `redis`."""

    def __init__(self, redis: Redis, restore: Restore | None = None, batch: ScriptBatcher | None = None) -> None:
        self.redis = redis
        self._restore_from_database = restore
        self._restore = redis.register_script(_RESTORE)
        self._acquire = redis.register_script(_ACQUIRE)
        self._heartbeat = redis.register_script(_HEARTBEAT)
        self._release = redis.register_script(_RELEASE)
        self._sweep = redis.register_script(_SWEEP_ONE)
        self._live = redis.register_script(_LIVE)
        self._count = redis.register_script(_COUNT)
        self._batch = batch or ScriptBatcher(redis)
        self._acquire_as = redis.register_script(_ACQUIRE_AS)
        self._heartbeat_as = redis.register_script(_HEARTBEAT_AS)
        self._release_as = redis.register_script(_RELEASE_AS)

    async def acquire(
        self, license_id: uuid.UUID, organization_id: uuid.UUID, hardware_id: str, seats: int, ttl_seconds: int
    ) -> Acquired:
        new_id = uuid.uuid4()
        for _ in range(2):
            sid, created, live, expires = await self._acquire(
                keys=[EXPIRY_INDEX, ENDED_LOG, EPOCH],
                args=[
                    str(license_id),
                    str(new_id),
                    hardware_id,
                    seats,
                    ttl_seconds * 1000,
                    str(organization_id),
                    LEASES_PREFIX,
                    LEASE_PREFIX,
                ],
            )
            if int(created) != -1:
                break
            await self.ensure_restored()
        else:
            raise SeatsRestoring(headers={"Retry-After": "2"})
        return Acquired(
            session_id=uuid.UUID(sid) if sid else None,
            created=bool(int(created)),
            live=int(live),
            expires_at=_time(expires) if sid else None,
        )

    async def owner(self, session_id: uuid.UUID) -> LeaseOwner | None:
        data = await self.redis.hgetall(lease_key(session_id))  # type: ignore[misc]
        if not data and not await self.restored():
            await self.ensure_restored()
            data = await self.redis.hgetall(lease_key(session_id))  # type: ignore[misc]
        if not data:
            return None
        return LeaseOwner(uuid.UUID(data["license"]), uuid.UUID(data["org"]), data["hw"])

    async def heartbeat(
        self, license_id: uuid.UUID, session_id: uuid.UUID, ttl_seconds: int
    ) -> tuple[datetime, int] | None:
        ok, expires, live = await self._heartbeat(
            keys=[EXPIRY_INDEX, lease_key(session_id)],
            args=[str(license_id), str(session_id), ttl_seconds * 1000, LEASES_PREFIX],
        )
        if not int(ok):
            return None
        expires_at = _time(expires)
        assert expires_at is not None
        return expires_at, int(live)

    async def release(self, license_id: uuid.UUID, session_id: uuid.UUID, reason: str) -> tuple[bool, int]:
        released, live = await self._release(
            keys=[EXPIRY_INDEX, ENDED_LOG, lease_key(session_id)],
            args=[str(license_id), str(session_id), reason, LEASES_PREFIX],
        )
        return bool(int(released)), int(live)

    async def live(self, license_id: uuid.UUID, limit: int = 1000) -> list[LiveLease]:
        """Up to `limit` live leases, soonest to expire first."""
        leases, _, meta = _keys(license_id)
        rows: list[Any] = await self._live(keys=[leases, meta], args=[limit])
        out = []
        for i in range(0, len(rows), 3):
            info = json.loads(rows[i + 2])
            expires_at = _time(rows[i + 1])
            assert expires_at is not None
            out.append(
                LiveLease(
                    session_id=uuid.UUID(rows[i]),
                    hardware_id=info.get("hw", ""),
                    acquired_at=_time(info.get("acq")),
                    last_heartbeat_at=_time(info.get("hb")),
                    heartbeats=int(info.get("n") or 0),
                    expires_at=expires_at,
                )
            )
        return out

    async def live_count(self, license_id: uuid.UUID) -> int:
        return int(await self._count(keys=[_keys(license_id)[0]]))

    async def live_counts(self, license_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        """`live_count` of each license, in one round trip (a page of licenses costs one call, not one each)."""
        if not license_ids:
            return {}
        counts = await run_scripts(self.redis, [(self._count, [1, _keys(license_id)[0]]) for license_id in license_ids])
        return {license_id: int(count) for license_id, count in zip(license_ids, counts, strict=True)}

    async def live_total(self) -> int:
        """Leases live now, across every license: a count over the expiry index (O(log n), no scan)."""
        now_s, now_us = await self.redis.time()
        return int(await self.redis.zcount(EXPIRY_INDEX, f"({int(now_s) * 1000 + int(now_us) // 1000}", "+inf"))

    async def sweep_expired(self, limit: int = 1000) -> int:
        """End every lease whose time is up (found through the global expiry index)."""
        now_s, now_us = await self.redis.time()
        now_ms = int(now_s) * 1000 + int(now_us) // 1000
        due = await self.redis.zrangebyscore(EXPIRY_INDEX, "-inf", now_ms, start=0, num=limit)
        swept = 0
        for license_id in {entry.split(":", 1)[0] for entry in due}:
            swept += int(await self._sweep(keys=[EXPIRY_INDEX, ENDED_LOG], args=[license_id, LEASES_PREFIX]))
        return swept

    async def ack_ended(self, count: int) -> None:
        """Drop the first `count` entries of the ended log, once their history is committed."""
        await self.redis.ltrim(ENDED_LOG, count, -1)  # type: ignore[misc]

    async def peek_ended(self, limit: int = 1000) -> list[EndedLease]:
        """The first `limit` ended leases, left on the log until `ack_ended` (nothing lost on a crash)."""
        raw: list[str] = await self.redis.lrange(ENDED_LOG, 0, limit - 1)  # type: ignore[misc]
        out = []
        for item in raw:
            data = json.loads(item)
            ended_at = _time(data["at"])
            assert ended_at is not None
            out.append(
                EndedLease(
                    session_id=uuid.UUID(data["sid"]),
                    license_id=uuid.UUID(data["lic"]),
                    reason=data["reason"],
                    ended_at=ended_at,
                    last_heartbeat_at=_time(data.get("hb")),
                    heartbeats=int(data.get("n") or 0),
                )
            )
        return out

    # -- the seat routes: caller, license and lease in one call (see `_SEAT_LIB`) ----------------------

    async def acquire_as(
        self, admit_keys: list[str], admit_args: list[Any], key_index: str, hardware_id: str, ttl_seconds: int
    ) -> list[Any]:
        reply: list[Any] = await self._batch(
            self._acquire_as,
            [*admit_keys, key_index, EXPIRY_INDEX, ENDED_LOG, EPOCH],
            [
                *admit_args,
                str(uuid.uuid4()),
                hardware_id,
                ttl_seconds * 1000,
                LEASES_PREFIX,
                keys.license_state(""),
                LEASE_PREFIX,
            ],
        )
        return reply

    async def heartbeat_as(
        self, admit_keys: list[str], admit_args: list[Any], session_id: uuid.UUID, ttl_seconds: int
    ) -> list[Any]:
        reply: list[Any] = await self._batch(
            self._heartbeat_as,
            [*admit_keys, lease_key(session_id), EXPIRY_INDEX, ENDED_LOG, EPOCH],
            [*admit_args, str(session_id), ttl_seconds * 1000, LEASES_PREFIX, keys.license_state("")],
        )
        return reply

    async def release_as(
        self, admit_keys: list[str], admit_args: list[Any], session_id: uuid.UUID, reason: str
    ) -> list[Any]:
        reply: list[Any] = await self._batch(
            self._release_as,
            [*admit_keys, lease_key(session_id), EXPIRY_INDEX, ENDED_LOG, EPOCH],
            [*admit_args, str(session_id), reason, LEASES_PREFIX, keys.license_state("")],
        )
        return reply

    # -- after Redis lost its data ---------------------------------------------------------------

    async def restored(self) -> bool:
        """Whether the leases in Redis are complete (built here, or restored after a loss)."""
        return bool(await self.redis.exists(EPOCH))

    async def ensure_restored(self) -> None:
        """Rebuild the leases from PostgreSQL if Redis lost them (once, whoever asks first)."""
        if self._restore_from_database is None:
            await self.mark_restored()
        else:
            await self._restore_from_database(self)

    async def mark_restored(self) -> None:
        await self.redis.set(EPOCH, datetime.now(UTC).isoformat(), nx=True)

    async def restore(
        self,
        license_id: uuid.UUID,
        organization_id: uuid.UUID,
        seats: int,
        ttl_seconds: int,
        sessions: Sequence[OpenSession],
    ) -> tuple[int, int]:
        """Leases again for `sessions` of one license, each for `ttl_seconds` from now: (restored, ended)."""
        head: list[str | int] = [str(license_id), str(organization_id), seats, ttl_seconds * 1000]
        newest_first = sorted(sessions, key=lambda s: s.acquired_at, reverse=True)
        restored = ended = 0
        for start in range(0, len(newest_first), RESTORE_STEP):  # in order: each step sees the seats taken before
            args = list(head)
            for open_session in newest_first[start : start + RESTORE_STEP]:
                acquired_ms = int(open_session.acquired_at.timestamp() * 1000)
                args += [str(open_session.session_id), open_session.hardware_id, acquired_ms]
            step_restored, step_ended = await self._restore(
                keys=[*_keys(license_id), EXPIRY_INDEX, ENDED_LOG, LEASE_PREFIX], args=args
            )
            restored, ended = restored + int(step_restored), ended + int(step_ended)
        return restored, ended
