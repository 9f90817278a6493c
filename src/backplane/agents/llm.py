"""The optional LLM: an OpenAI-compatible `POST {LLM_BASE_URL}/chat/completions` call over httpx.

The job runner builds the call with `chat_completions(settings, http)` and puts it in
`AgentContext.llm` (None when LLM_BASE_URL is unset). Agents draft through `draft()`, which returns
None on any failure so that the caller falls back to its offline pipeline: an LLM outage must not
fail customers' jobs. The answer is read as it streams in and given up past LLM_MAX_RESPONSE_BYTES, asked for
uncompressed (a compressed body is decoded a whole chunk at a time, past any cap).
LLM_BASE_URL is the operator's own setting, not a customer URL, so it is
called directly rather than through the SSRF guard (a self-hosted model on a private address is a
normal setup).
"""

from __future__ import annotations

import json
import logging

import httpx

from backplane.agents.base import AgentContext, LLMCall
from backplane.core.config import Settings

logger = logging.getLogger(__name__)


class LLMError(Exception):
    """The chat completions endpoint failed or answered something unusable."""


def chat_completions(settings: Settings, http: httpx.AsyncClient) -> LLMCall | None:
    """The `LLMCall` for `settings`, or None when no LLM is configured."""
    if not settings.llm_base_url:
        return None
    url = settings.llm_base_url.rstrip("/") + "/chat/completions"
    headers = {"Content-Type": "application/json", "Accept-Encoding": "identity"}
    if settings.llm_api_key is not None:
        headers["Authorization"] = f"Bearer {settings.llm_api_key.get_secret_value()}"
    model = settings.llm_model
    timeout = settings.llm_timeout_seconds
    max_bytes = settings.llm_max_response_bytes

    async def call(system: str, user: str) -> str:
        body = {
            "model": model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "temperature": 0.4,
        }
        try:
            async with http.stream("POST", url, json=body, headers=headers, timeout=timeout) as response:
                if response.status_code != 200:
                    raise LLMError(f"chat completions answered {response.status_code}")
                raw = await read_capped(response, max_bytes)
        except httpx.HTTPError as exc:
            raise LLMError(f"chat completions request failed: {type(exc).__name__}") from exc
        try:
            content = json.loads(raw)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise LLMError("chat completions answered without choices[0].message.content") from exc
        if not isinstance(content, str) or not content.strip():
            raise LLMError("chat completions answered an empty message")
        return content.strip()

    return call


async def read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """The body, read as it streams in and given up past `max_bytes` (a misbehaving endpoint must not fill memory)."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise LLMError(f"chat completions answered more than {max_bytes} bytes")
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise LLMError(f"chat completions answered more than {max_bytes} bytes")
    return bytes(body)


async def draft(ctx: AgentContext, system: str, user: str) -> str | None:
    """The LLM's answer, or None when there is no LLM or it failed (logged; the caller goes offline)."""
    if ctx.llm is None:
        return None
    try:
        return await ctx.llm(system, user)
    except Exception as exc:  # any failure of an optional backend means "use the offline pipeline"
        logger.warning("LLM draft failed for job %s, using the offline pipeline: %s", ctx.job_id, exc)
        return None


async def draft_json(ctx: AgentContext, system: str, user: str) -> object | None:
    """Like `draft`, for an answer that must be JSON (a fenced ```json block is unwrapped)."""
    answer = await draft(ctx, system + "\nAnswer with JSON only, no prose.", user)
    if answer is None:
        return None
    cleaned = answer.strip()
    if cleaned.startswith("```"):
        cleaned = cleaned.strip("`").removeprefix("json").strip()
    try:
        return json.loads(cleaned)
    except ValueError:
        logger.warning("LLM answer for job %s was not JSON, using the offline pipeline", ctx.job_id)
        return None
