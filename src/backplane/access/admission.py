"""Admitting a caller inside a hot path's own Redis script (the seat routes), PostgreSQL only on a miss.

A route that declares `RequireAdmitted(scope)` gets an `Admission`, not a `Principal`: the access
token is verified (signature, expiry, audience) in the process, and everything else a `Require` would
check (revocation, membership, role, rate limit) is checked by the route's script in the same Redis
call as the route's work, from `callers.CALLER_LUA`'s cache. When the script cannot decide (no
cached entry, or an entry that refuses), `resolve()` takes the full path (`authenticate_jwt` against
PostgreSQL, then `Require.check`), which raises exactly what any other route would, or admits the
caller and fills the cache so that the next request stays in Redis.

An API key's first request in a process takes the full path (`authenticate_key`), which tells the
process what never changes about the key: its id, its creator and its mode (`KnownKey`, by the
secret's hash). From then on its requests are admitted like a user's, from the key's entry in its
creator's cached hash (`callers.py`: revocation, the creator's removal, role change or deactivation
empty it; it admits until the key expires, and for a minute after the full path last checked it).
A key with an IP allow-list, or a mode header the key does not have, always takes the full path.

Script layout (`ADMIT_LUA`): KEYS[1..5] jti, cut-off, sign-in (all three '' for a key), caller hash
(a key's: its creator's), rate-limit key; ARGV[1..6] caller field ('' when already resolved; `key:<id>`
for a key), token issued-at (or, resolved, the organization id; '' for a key), minimum role rank,
livemode ('1'/'0'), limit interval ms, limit capacity (0: not limited). A script's own keys and
arguments start at KEYS[6] and ARGV[7].
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from backplane.access import callers
from backplane.access.authenticate import (
    MODE_HEADER,
    MODE_HEADER_DESCRIPTION,
    NO_CREDENTIALS,
    ORG_HEADER_DESCRIPTION,
    access_claims,
    authenticate_jwt,
    authenticate_key,
    bearer,
    mode_from_header,
    organization_from_header,
)
from backplane.access.principal import MIN_ROLE, Principal, Scope
from backplane.access.requirements import Require
from backplane.api_keys.models import is_api_key
from backplane.auth.revocation import revocation_keys
from backplane.core import keys
from backplane.core.client_ip import client_ip
from backplane.core.config import Settings
from backplane.core.db import unit_of_work
from backplane.core.errors import NotFound, Unauthorized
from backplane.core.ratelimit import GCRA_LUA, Decision, Limit, RateLimited, apply, decide, limit_key
from backplane.core.security import TokenClaims, sha256_hex

ADMIT_LUA = (
    callers.CALLER_LUA
    + GCRA_LUA
    + """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- {code, limit decision (5 values, '' when none), the script's own values...}
local function reply(code, decision, values)
  local out = {code}
  for i = 1, 5 do out[#out + 1] = decision and decision[i] or '' end
  for _, v in ipairs(values or {}) do out[#out + 1] = v end
  return out
end
-- -> organization id, limit decision | nil, the reply that refuses
local function admit(now)
  local org = ARGV[2]
  if ARGV[1] ~= '' then
    local c
    if string.sub(ARGV[1], 1, 4) == 'key:' then
      c = key_caller(KEYS[4], ARGV[1], tonumber(ARGV[3]), now)
    else
      c = caller(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2])
      if c[1] == 'ok' and c[3] < tonumber(ARGV[3]) then c = {'deny'} end
    end
    if c[1] == 'miss' then return nil, reply('miss', nil, {c[2], now}) end  -- now: a key entry's "checked"
    if c[1] ~= 'ok' then return nil, reply('deny') end
    org = c[2]
  end
  if tonumber(ARGV[6]) > 0 then
    local d = gcra(KEYS[5], tonumber(ARGV[5]), tonumber(ARGV[6]), now)
    if d[1] == 0 then return nil, reply('limited', d) end
    return org, d
  end
  return org, nil
end
"""
)
ADMIT_KEYS = 5
ADMIT_ARGS = 6


@dataclass(frozen=True, slots=True)
class KnownKey:
    """What never changes about an API key: enough to find its cached entry and to act in its mode."""

    id: uuid.UUID
    creator_id: uuid.UUID
    livemode: bool


# The API keys this process has authenticated, by the hash of their secret. Nothing here can go stale
# (revocation and everything else that can change lives in Redis); it is bounded all the same.
_known_keys: dict[str, KnownKey] = {}
MAX_KNOWN_KEYS = 10_000


def _remember(secret_hash: str, principal: Principal) -> None:
    api_key = principal.api_key
    if api_key is None or api_key.created_by_id is None or api_key.allowed_ips:
        return
    if len(_known_keys) >= MAX_KNOWN_KEYS:
        _known_keys.clear()
    _known_keys[secret_hash] = KnownKey(api_key.id, api_key.created_by_id, api_key.livemode)


class Admission:
    """The caller of one request to a hot path, until its script admits it (see the module)."""

    def __init__(
        self,
        request: Request,
        requirement: RequireAdmitted,
        *,
        claims: TokenClaims | None = None,
        user_id: uuid.UUID | None = None,
        token: str = "",
        organization_header: str | None = None,
        mode: bool | None = None,
        principal: Principal | None = None,
        key: KnownKey | None = None,
    ) -> None:
        self.request = request
        self.requirement = requirement
        self.claims = claims
        self.user_id = user_id
        self.token = token
        self.organization_header = organization_header
        self.mode = mode  # what X-Backplane-Mode asked for (None: not sent, live for a user)
        self.principal = principal
        self.key = key  # an API key known to this process, before its script admits it
        self.limit_decision: Decision | None = None  # the limit, once a script applied it
        if key is not None:
            self._field = callers.key_field(key.id)
        else:
            self._field = callers.field_for(organization_from_header(organization_header))

    @property
    def settings(self) -> Settings:
        settings: Settings = self.request.app.state.settings
        return settings

    @property
    def livemode(self) -> bool:
        if self.principal is not None:
            return self.principal.livemode
        if self.key is not None:
            return self.key.livemode
        return self.mode is not False

    @property
    def caller_id(self) -> str:
        if self.principal is not None:
            return self.principal.caller_id
        if self.key is not None:
            return f"key:{self.key.id}"
        return f"user:{self.user_id}"

    @property
    def organization_id(self) -> uuid.UUID:
        """Known once resolved; before that the script finds it (and returns it where it matters)."""
        assert self.principal is not None
        return self.principal.organization_id

    def script_keys_args(self, limit: Limit | None, subject: str) -> tuple[list[str], list[Any]]:
        """KEYS[1..5] and ARGV[1..6] of `ADMIT_LUA` for this caller; `limit` None once applied."""
        minimum = callers.ROLE_RANK[MIN_ROLE[self.requirement.scope or Scope.read]]
        limiting = limit is not None and self.request.app.state.settings.rate_limits_enabled
        limit_args = [limit.interval_ms, limit.capacity] if limiting and limit is not None else [0, 0]
        limit_key_ = limit_key(subject, limit) if limiting and limit is not None else ""
        if self.principal is not None:
            resolved = str(self.principal.organization_id)
            return ["", "", "", "", limit_key_], ["", resolved, minimum, _flag(self.livemode), *limit_args]
        if self.key is not None:
            caller_key = keys.caller(self.key.creator_id)
            return ["", "", "", caller_key, limit_key_], [self._field, "", minimum, _flag(self.livemode), *limit_args]
        assert self.claims is not None and self.user_id is not None
        return (
            [*revocation_keys(self.claims), keys.caller(self.user_id), limit_key_],
            [self._field, repr(self.claims.issued_at), minimum, _flag(self.livemode), *limit_args],
        )

    def admitted(self, reply: list[Any], limit: Limit | None) -> bool:
        """Whether the script admitted the caller; raises 429 for a refused limit. A reply of 'miss' or
        'deny' means: `resolve()` and run the script again."""
        code = reply[0]
        if limit is not None and reply[1] != "":
            self.limit_decision = decide(limit, reply[1:6])
            apply(self.request, self.limit_decision)  # raises RateLimited when refused
        if code == "limited":  # a refusal without a limit would be a bug in the script
            raise RateLimited(decide(limit or Limit("unknown", 1), reply[1:6]))
        return code not in ("miss", "deny")

    async def resolve(self, reply: list[Any]) -> Principal:
        """The full path: the exact refusal any other route would give, or the caller admitted (and the
        cache filled for the next request)."""
        if self.principal is not None:
            return self.principal
        if self.key is not None:
            principal = await self._resolve_key(reply)
        else:
            principal = await self._resolve_user(reply)
        self.requirement.check(principal)
        self.principal = principal
        return principal

    async def _resolve_user(self, reply: list[Any]) -> Principal:
        assert self.user_id is not None
        state = self.request.app.state
        async with unit_of_work(state.sessionmaker) as session:
            try:
                principal = await authenticate_jwt(
                    session, state.redis, state.settings, self.token, self.organization_header, livemode=self.mode
                )
            except NotFound:  # no member of the organization the header names
                if reply[0] == "miss":
                    await callers.fill(state.redis, self.user_id, self._field, str(reply[6]), "n")
                raise
            if reply[0] == "miss":
                await callers.fill(state.redis, self.user_id, self._field, str(reply[6]), callers.entry_for(principal))
        return principal

    async def _resolve_key(self, reply: list[Any]) -> Principal:
        assert self.key is not None
        state = self.request.app.state
        async with unit_of_work(state.sessionmaker) as session:
            ip = client_ip(self.request, state.trusted_proxies)
            principal = await authenticate_key(session, self.token, ip, livemode=self.mode)
        # Stamped with Redis's clock (the miss reply's), which the script compares it with: an API host's
        # clock running behind would otherwise make every entry too old to admit, or ahead, admit too long.
        entry = callers.key_entry_for(principal, int(reply[7])) if reply[0] == "miss" else None
        if entry is not None:
            await callers.fill(state.redis, self.key.creator_id, self._field, str(reply[6]), entry)
        return principal


_ADMISSION_HEADERS = {b"authorization": 0, b"x-organization-id": 1, MODE_HEADER.lower().encode(): 2}


def _admission_headers(scope: Any) -> list[str | None]:
    """`Authorization`, `X-Organization-ID` and `X-Backplane-Mode` (each its first occurrence, as
    Starlette's `Headers.get` gives it; None when not sent), in one pass over the request's headers."""
    found: list[str | None] = [None, None, None]
    for name, value in scope["headers"]:
        index = _ADMISSION_HEADERS.get(name)
        if index is not None and found[index] is None:
            found[index] = value.decode("latin-1")
    return found


def _flag(value: bool) -> str:
    return "1" if value else "0"


class RequireAdmitted(Require):
    """Like `Require`, checked inside the route's Redis script (see the module's docstring).

    It reads `Authorization`, `X-Organization-ID` and `X-Backplane-Mode` itself, as the route's only
    dependency: each dependency FastAPI solves costs about as much as the whole script call. `OPENAPI`
    documents them on the route instead."""

    @property
    def admits_keys_from_cache(self) -> bool:
        """A key's cached entry answers for its scopes only: a requirement of a user, staff or live
        mode takes the full path every time."""
        return not (self.user or self.staff or self.live)

    async def __call__(self, request: Request) -> Admission:  # type: ignore[override]
        authorization, organization_header, mode_header = _admission_headers(request.scope)
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized(NO_CREDENTIALS)
        mode = mode_from_header(mode_header)
        if is_api_key(token):
            secret_hash = sha256_hex(token)
            known = _known_keys.get(secret_hash)
            if known is not None and mode in (None, known.livemode) and self.admits_keys_from_cache:
                return Admission(request, self, key=known, token=token, mode=mode)
            async with unit_of_work(request.app.state.sessionmaker) as session:
                ip = client_ip(request, request.app.state.trusted_proxies)
                principal = await authenticate_key(session, token, ip, livemode=mode)
            self.check(principal)
            _remember(secret_hash, principal)
            return Admission(request, self, principal=principal)
        claims, user_id = access_claims(request.app.state.settings, token)
        return Admission(
            request,
            self,
            claims=claims,
            user_id=user_id,
            token=token,
            organization_header=organization_header,
            mode=mode,
        )


# What the route's own dependencies would have put in its OpenAPI operation (`openapi_extra=`).
OPENAPI: dict[str, Any] = {
    "security": [{bearer.scheme_name: []}],
    "parameters": [
        {
            "name": "X-Organization-ID",
            "in": "header",
            "required": False,
            "description": ORG_HEADER_DESCRIPTION,
            "schema": {"type": "string", "title": "X-Organization-Id"},
        },
        {
            "name": MODE_HEADER,
            "in": "header",
            "required": False,
            "description": MODE_HEADER_DESCRIPTION,
            "schema": {"type": "string", "title": MODE_HEADER},
            "example": "test",
        },
    ],
}


# The seat routes' requirement; `licenses/fast_path.py` admits their callers with this same object.
SEAT_WRITER = RequireAdmitted(Scope.write)
SeatWriter = Annotated[Admission, Depends(SEAT_WRITER)]
