"""`CoExAI` and `AsyncCoExAI`: one surface, each method a thin call of the shared operation."""

from __future__ import annotations

import builtins
import os
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import httpx

from coexai import _operations as ops
from coexai._http import AsyncTransport, Operation, RetryPolicy, SyncTransport
from coexai._operations import FileInput, JobParams
from coexai.models import (
    Agent,
    AgentConfig,
    ApiKey,
    Event,
    File,
    Job,
    JobOutput,
    JobTransition,
    Me,
    Member,
    Organization,
    Webhook,
    WebhookDelivery,
)
from coexai.webhooks import WebhookVerifier

T = TypeVar("T")
DEFAULT_BASE_URL = "https://api.coexai.com"
DEFAULT_TIMEOUT = 30.0  # the licensing guide's recommendation for every request


def _base_url(base_url: str | None) -> str:
    """The service's root. The guide's base URL ends in `/v1`; the SDK adds the surface's prefix itself."""
    url = (base_url or os.environ.get("COEXAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    return url.removesuffix("/v1")


def _settings(api_key: str | None, base_url: str | None, max_retries: int) -> tuple[str | None, str, RetryPolicy]:
    return api_key or os.environ.get("COEXAI_API_KEY"), _base_url(base_url), RetryPolicy(max_retries=max_retries)


# The sync surface


class _Sync:
    def __init__(self, transport: SyncTransport) -> None:
        self._transport = transport

    def _run(self, operation: Operation[T]) -> T:
        return self._transport.run(operation)

    def _iterate(self, path: str, model: type[T], params: Mapping[str, Any]) -> Iterator[T]:
        cursor: str | None = None
        while True:
            found = self._run(ops.page(path, model, {**params, "cursor": cursor}))
            yield from found.data
            if not found.has_more or not found.next_cursor:
                return
            cursor = found.next_cursor


class Jobs(_Sync):
    def create(
        self,
        *,
        agent_id: str,
        input_data: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
        files: Sequence[FileInput] | None = None,
        file_ids: Sequence[str] | None = None,
        priority: int | None = None,
        idempotency_key: str | None = None,
        webhook: str | None = None,
        webhook_events_filter: Sequence[str] | None = None,
    ) -> Job:
        """Create a job. `files` (paths, open binary files or (name, bytes) tuples) go up with it in one
        multipart request; `file_ids` names files uploaded before."""
        return self._run(
            ops.create_job(
                agent_id, input_data, config, files, file_ids, priority, idempotency_key, webhook, webhook_events_filter
            )
        )

    def create_batch(
        self, jobs: Iterable[JobParams | Mapping[str, Any]], *, idempotency_key: str | None = None
    ) -> builtins.list[Job]:
        """Up to 100 jobs in one request, all or none; an item's `file`/`files` are uploaded first."""
        return self._run(ops.create_batch(jobs, idempotency_key))

    def get(self, job_id: str) -> Job:
        return self._run(ops.call("GET", f"/v1/jobs/{job_id}", Job))

    def list(
        self, *, status: str | None = None, agent_id: str | None = None, limit: int = 100, **filters: Any
    ) -> Iterator[Job]:
        """Every job (newest first), fetched page by page as the iterator is consumed."""
        return self._iterate("/v1/jobs", Job, {"status": status, "agent_id": agent_id, "limit": limit, **filters})

    def get_output(
        self, job_id: str, *, format: str | None = None, wait: float | None = 600, poll_interval: float = 1.0
    ) -> JobOutput:
        """The output of a completed job, waiting up to `wait` seconds for one still running."""
        return self._run(ops.get_output(job_id, format, wait, poll_interval))

    def history(self, job_id: str) -> builtins.list[JobTransition]:
        return self._run(ops.call_list("GET", f"/v1/jobs/{job_id}/history", JobTransition))

    def cancel(self, job_id: str) -> Job:
        return self._run(ops.call("POST", f"/v1/jobs/{job_id}/cancel", Job))

    def retry(self, job_id: str) -> Job:
        return self._run(ops.call("POST", f"/v1/jobs/{job_id}/retry", Job))

    def wait_for_completion(self, job_id: str, *, timeout: float | None = 600, poll_interval: float = 1.0) -> Job:
        """The job once completed, failed, dead-lettered or cancelled (`WaitTimeoutError` after `timeout`)."""
        return self._run(ops.wait_for_completion(job_id, timeout, poll_interval))


class Files(_Sync):
    def upload(
        self, file: FileInput, *, metadata: Mapping[str, Any] | None = None, agent_id: str | None = None
    ) -> File:
        return self._run(ops.upload_file(file, metadata=metadata, agent_id=agent_id))

    def upload_large(self, file: FileInput) -> File:
        """The pre-signed upload (URL, PUT, confirm), for files above 100 MB."""
        return self._run(ops.upload_large(file))

    def get(self, file_id: str) -> File:
        return self._run(ops.call("GET", f"/v1/files/{file_id}", File))

    def list(self, *, status: str | None = None, limit: int = 100) -> Iterator[File]:
        return self._iterate("/v1/files", File, {"status": status, "limit": limit})

    def download(self, file_id: str) -> bytes:
        return self._run(ops.raw("GET", f"/v1/files/{file_id}/content"))

    def delete(self, file_id: str) -> None:
        self._run(ops.call_json("DELETE", f"/v1/files/{file_id}"))


class Agents(_Sync):
    def list(self) -> list[Agent]:
        return self._run(ops.call_list("GET", "/v1/agents", Agent))

    def get_config(self, agent_id: str) -> AgentConfig:
        return self._run(ops.call("GET", f"/v1/agents/{agent_id}/config", AgentConfig))


class Webhooks(_Sync):
    def __init__(self, transport: SyncTransport, secret: str | None) -> None:
        super().__init__(transport)
        self._verifier = WebhookVerifier(secret)
        self.verify = self._verifier.verify
        self.construct_event = self._verifier.construct_event

    def create(
        self,
        *,
        url: str,
        events: Sequence[str],
        description: str | None = None,
        enabled: bool = True,
        ordering: str | None = None,
    ) -> Webhook:
        """A new endpoint; its `secret` is in this answer only."""
        body = {"url": url, "events": list(events), "description": description, "enabled": enabled}
        if ordering is not None:
            body["ordering"] = ordering
        return self._run(ops.call("POST", "/v1/webhooks", Webhook, json=body))

    def list(self, *, limit: int = 100) -> Iterator[Webhook]:
        return self._iterate("/v1/webhooks", Webhook, {"limit": limit})

    def get(self, webhook_id: str) -> Webhook:
        return self._run(ops.call("GET", f"/v1/webhooks/{webhook_id}", Webhook))

    def update(self, webhook_id: str, **fields: Any) -> Webhook:
        return self._run(ops.call("PATCH", f"/v1/webhooks/{webhook_id}", Webhook, json=fields))

    def delete(self, webhook_id: str) -> None:
        self._run(ops.call_json("DELETE", f"/v1/webhooks/{webhook_id}"))

    def test(self, webhook_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._run(ops.call_json("POST", f"/v1/webhooks/{webhook_id}/test"))
        return result

    def rotate_secret(self, webhook_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._run(ops.call_json("POST", f"/v1/webhooks/{webhook_id}/rotate-secret"))
        return result

    def deliveries(self, webhook_id: str, *, limit: int = 100) -> Iterator[WebhookDelivery]:
        return self._iterate(f"/v1/webhooks/{webhook_id}/deliveries", WebhookDelivery, {"limit": limit})

    def redeliver(self, webhook_id: str, delivery_id: str) -> WebhookDelivery:
        path = f"/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"
        return self._run(ops.call("POST", path, WebhookDelivery))


class Events(_Sync):
    def list(self, *, type: str | None = None, limit: int = 100, **filters: Any) -> Iterator[Event]:
        return self._iterate("/v1/events", Event, {"type": type, "limit": limit, **filters})

    def get(self, event_id: str) -> Event:
        return self._run(ops.call("GET", f"/v1/events/{event_id}", Event))


class ApiKeys(_Sync):
    def create(self, *, name: str, **fields: Any) -> ApiKey:
        """A new key (`mode`, `scopes`, `expires_at`, `allowed_ips` optional); `key` is in this answer only."""
        return self._run(ops.call("POST", "/v1/api-keys", ApiKey, json={"name": name, **fields}))

    def list(self, *, limit: int = 100) -> Iterator[ApiKey]:
        return self._iterate("/v1/api-keys", ApiKey, {"limit": limit})

    def get(self, key_id: str) -> ApiKey:
        return self._run(ops.call("GET", f"/v1/api-keys/{key_id}", ApiKey))

    def revoke(self, key_id: str) -> ApiKey:
        return self._run(ops.call("DELETE", f"/v1/api-keys/{key_id}", ApiKey))


class Organizations(_Sync):
    def list(self, *, limit: int = 100) -> Iterator[Organization]:
        return self._iterate("/v1/organizations", Organization, {"limit": limit})

    def create(self, *, name: str) -> Organization:
        return self._run(ops.call("POST", "/v1/organizations", Organization, json={"name": name}))

    def get(self, organization_id: str) -> Organization:
        return self._run(ops.call("GET", f"/v1/organizations/{organization_id}", Organization))

    def update(self, organization_id: str, *, name: str) -> Organization:
        path = f"/v1/organizations/{organization_id}"
        return self._run(ops.call("PATCH", path, Organization, json={"name": name}))

    def delete(self, organization_id: str) -> None:
        self._run(ops.call_json("DELETE", f"/v1/organizations/{organization_id}"))

    def members(self, organization_id: str, *, limit: int = 100) -> Iterator[Member]:
        return self._iterate(f"/v1/organizations/{organization_id}/members", Member, {"limit": limit})

    def invite(self, organization_id: str, *, email: str, role: str = "member") -> dict[str, Any]:
        path = f"/v1/organizations/{organization_id}/members"
        result: dict[str, Any] = self._run(ops.call_json("POST", path, json={"email": email, "role": role}))
        return result


class Users(_Sync):
    def me(self) -> Me:
        return self._run(ops.call("GET", "/v1/users/me", Me))


class CoExAI:
    """The platform API (`/v1/`), synchronous.

    `api_key` defaults to `COEXAI_API_KEY`, `base_url` to `COEXAI_BASE_URL` or the production host;
    `webhook_secret` (or `COEXAI_WEBHOOK_SECRET`) is what `webhooks.verify` checks signatures with.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        webhook_secret: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 3,
        http_client: httpx.Client | None = None,
    ) -> None:
        key, root, retry = _settings(api_key, base_url, max_retries)
        self.base_url = root
        self._http = http_client or httpx.Client(base_url=root, timeout=timeout)
        transport = SyncTransport(self._http, key, retry)
        self.jobs = Jobs(transport)
        self.files = Files(transport)
        self.agents = Agents(transport)
        self.webhooks = Webhooks(transport, webhook_secret or os.environ.get("COEXAI_WEBHOOK_SECRET"))
        self.events = Events(transport)
        self.api_keys = ApiKeys(transport)
        self.organizations = Organizations(transport)
        self.users = Users(transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CoExAI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# The async surface: the same methods, awaited.


class _Async:
    def __init__(self, transport: AsyncTransport) -> None:
        self._transport = transport

    async def _run(self, operation: Operation[T]) -> T:
        return await self._transport.run(operation)

    async def _iterate(self, path: str, model: type[T], params: Mapping[str, Any]) -> AsyncIterator[T]:
        cursor: str | None = None
        while True:
            found = await self._run(ops.page(path, model, {**params, "cursor": cursor}))
            for item in found.data:
                yield item
            if not found.has_more or not found.next_cursor:
                return
            cursor = found.next_cursor


class AsyncJobs(_Async):
    async def create(
        self,
        *,
        agent_id: str,
        input_data: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
        files: Sequence[FileInput] | None = None,
        file_ids: Sequence[str] | None = None,
        priority: int | None = None,
        idempotency_key: str | None = None,
        webhook: str | None = None,
        webhook_events_filter: Sequence[str] | None = None,
    ) -> Job:
        return await self._run(
            ops.create_job(
                agent_id, input_data, config, files, file_ids, priority, idempotency_key, webhook, webhook_events_filter
            )
        )

    async def create_batch(
        self, jobs: Iterable[JobParams | Mapping[str, Any]], *, idempotency_key: str | None = None
    ) -> builtins.list[Job]:
        return await self._run(ops.create_batch(jobs, idempotency_key))

    async def get(self, job_id: str) -> Job:
        return await self._run(ops.call("GET", f"/v1/jobs/{job_id}", Job))

    def list(
        self, *, status: str | None = None, agent_id: str | None = None, limit: int = 100, **filters: Any
    ) -> AsyncIterator[Job]:
        return self._iterate("/v1/jobs", Job, {"status": status, "agent_id": agent_id, "limit": limit, **filters})

    async def get_output(
        self, job_id: str, *, format: str | None = None, wait: float | None = 600, poll_interval: float = 1.0
    ) -> JobOutput:
        return await self._run(ops.get_output(job_id, format, wait, poll_interval))

    async def history(self, job_id: str) -> builtins.list[JobTransition]:
        return await self._run(ops.call_list("GET", f"/v1/jobs/{job_id}/history", JobTransition))

    async def cancel(self, job_id: str) -> Job:
        return await self._run(ops.call("POST", f"/v1/jobs/{job_id}/cancel", Job))

    async def retry(self, job_id: str) -> Job:
        return await self._run(ops.call("POST", f"/v1/jobs/{job_id}/retry", Job))

    # The guide names the parameter `timeout` (ASYNC109 would have callers wrap the call in asyncio.timeout).
    async def wait_for_completion(
        self,
        job_id: str,
        *,
        timeout: float | None = 600,  # noqa: ASYNC109
        poll_interval: float = 1.0,
    ) -> Job:
        return await self._run(ops.wait_for_completion(job_id, timeout, poll_interval))


class AsyncFiles(_Async):
    async def upload(
        self, file: FileInput, *, metadata: Mapping[str, Any] | None = None, agent_id: str | None = None
    ) -> File:
        return await self._run(ops.upload_file(file, metadata=metadata, agent_id=agent_id))

    async def upload_large(self, file: FileInput) -> File:
        return await self._run(ops.upload_large(file))

    async def get(self, file_id: str) -> File:
        return await self._run(ops.call("GET", f"/v1/files/{file_id}", File))

    def list(self, *, status: str | None = None, limit: int = 100) -> AsyncIterator[File]:
        return self._iterate("/v1/files", File, {"status": status, "limit": limit})

    async def download(self, file_id: str) -> bytes:
        return await self._run(ops.raw("GET", f"/v1/files/{file_id}/content"))

    async def delete(self, file_id: str) -> None:
        await self._run(ops.call_json("DELETE", f"/v1/files/{file_id}"))


class AsyncAgents(_Async):
    async def list(self) -> list[Agent]:
        return await self._run(ops.call_list("GET", "/v1/agents", Agent))

    async def get_config(self, agent_id: str) -> AgentConfig:
        return await self._run(ops.call("GET", f"/v1/agents/{agent_id}/config", AgentConfig))


class AsyncWebhooks(_Async):
    def __init__(self, transport: AsyncTransport, secret: str | None) -> None:
        super().__init__(transport)
        self._verifier = WebhookVerifier(secret)
        self.verify = self._verifier.verify
        self.construct_event = self._verifier.construct_event

    async def create(
        self,
        *,
        url: str,
        events: Sequence[str],
        description: str | None = None,
        enabled: bool = True,
        ordering: str | None = None,
    ) -> Webhook:
        body = {"url": url, "events": list(events), "description": description, "enabled": enabled}
        if ordering is not None:
            body["ordering"] = ordering
        return await self._run(ops.call("POST", "/v1/webhooks", Webhook, json=body))

    def list(self, *, limit: int = 100) -> AsyncIterator[Webhook]:
        return self._iterate("/v1/webhooks", Webhook, {"limit": limit})

    async def get(self, webhook_id: str) -> Webhook:
        return await self._run(ops.call("GET", f"/v1/webhooks/{webhook_id}", Webhook))

    async def update(self, webhook_id: str, **fields: Any) -> Webhook:
        return await self._run(ops.call("PATCH", f"/v1/webhooks/{webhook_id}", Webhook, json=fields))

    async def delete(self, webhook_id: str) -> None:
        await self._run(ops.call_json("DELETE", f"/v1/webhooks/{webhook_id}"))

    async def test(self, webhook_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._run(ops.call_json("POST", f"/v1/webhooks/{webhook_id}/test"))
        return result

    async def rotate_secret(self, webhook_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._run(ops.call_json("POST", f"/v1/webhooks/{webhook_id}/rotate-secret"))
        return result

    def deliveries(self, webhook_id: str, *, limit: int = 100) -> AsyncIterator[WebhookDelivery]:
        return self._iterate(f"/v1/webhooks/{webhook_id}/deliveries", WebhookDelivery, {"limit": limit})

    async def redeliver(self, webhook_id: str, delivery_id: str) -> WebhookDelivery:
        path = f"/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"
        return await self._run(ops.call("POST", path, WebhookDelivery))


class AsyncEvents(_Async):
    def list(self, *, type: str | None = None, limit: int = 100, **filters: Any) -> AsyncIterator[Event]:
        return self._iterate("/v1/events", Event, {"type": type, "limit": limit, **filters})

    async def get(self, event_id: str) -> Event:
        return await self._run(ops.call("GET", f"/v1/events/{event_id}", Event))


class AsyncApiKeys(_Async):
    async def create(self, *, name: str, **fields: Any) -> ApiKey:
        return await self._run(ops.call("POST", "/v1/api-keys", ApiKey, json={"name": name, **fields}))

    def list(self, *, limit: int = 100) -> AsyncIterator[ApiKey]:
        return self._iterate("/v1/api-keys", ApiKey, {"limit": limit})

    async def get(self, key_id: str) -> ApiKey:
        return await self._run(ops.call("GET", f"/v1/api-keys/{key_id}", ApiKey))

    async def revoke(self, key_id: str) -> ApiKey:
        return await self._run(ops.call("DELETE", f"/v1/api-keys/{key_id}", ApiKey))


class AsyncOrganizations(_Async):
    def list(self, *, limit: int = 100) -> AsyncIterator[Organization]:
        return self._iterate("/v1/organizations", Organization, {"limit": limit})

    async def create(self, *, name: str) -> Organization:
        return await self._run(ops.call("POST", "/v1/organizations", Organization, json={"name": name}))

    async def get(self, organization_id: str) -> Organization:
        return await self._run(ops.call("GET", f"/v1/organizations/{organization_id}", Organization))

    async def update(self, organization_id: str, *, name: str) -> Organization:
        path = f"/v1/organizations/{organization_id}"
        return await self._run(ops.call("PATCH", path, Organization, json={"name": name}))

    async def delete(self, organization_id: str) -> None:
        await self._run(ops.call_json("DELETE", f"/v1/organizations/{organization_id}"))

    def members(self, organization_id: str, *, limit: int = 100) -> AsyncIterator[Member]:
        return self._iterate(f"/v1/organizations/{organization_id}/members", Member, {"limit": limit})

    async def invite(self, organization_id: str, *, email: str, role: str = "member") -> dict[str, Any]:
        path = f"/v1/organizations/{organization_id}/members"
        result: dict[str, Any] = await self._run(ops.call_json("POST", path, json={"email": email, "role": role}))
        return result


class AsyncUsers(_Async):
    async def me(self) -> Me:
        return await self._run(ops.call("GET", "/v1/users/me", Me))


class AsyncCoExAI:
    """The platform API (`/v1/`) for asyncio: `CoExAI`'s methods, awaited; listings are async iterators."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        webhook_secret: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 3,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        key, root, retry = _settings(api_key, base_url, max_retries)
        self.base_url = root
        self._http = http_client or httpx.AsyncClient(base_url=root, timeout=timeout)
        transport = AsyncTransport(self._http, key, retry)
        self.jobs = AsyncJobs(transport)
        self.files = AsyncFiles(transport)
        self.agents = AsyncAgents(transport)
        self.webhooks = AsyncWebhooks(transport, webhook_secret or os.environ.get("COEXAI_WEBHOOK_SECRET"))
        self.events = AsyncEvents(transport)
        self.api_keys = AsyncApiKeys(transport)
        self.organizations = AsyncOrganizations(transport)
        self.users = AsyncUsers(transport)

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncCoExAI:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
