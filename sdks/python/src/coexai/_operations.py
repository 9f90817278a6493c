"""Every SDK call, written once as a generator of requests (see `_http.py`), driven sync or async."""

from __future__ import annotations

import json
import mimetypes
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, Generic, TypedDict, TypeVar, Union

import httpx

from coexai._http import FileTuple, Operation, Request, Sleep
from coexai.errors import CoExAIError, ConflictError, WaitTimeoutError
from coexai.models import FINAL_STATUSES, File, Job, JobOutput, UploadUrl, from_dict

T = TypeVar("T")

# What `files=` and `file=` accept: a path, an open binary file, or (filename, bytes[, content type]).
FileInput = Union[str, "os.PathLike[str]", IO[bytes], tuple[str, bytes], tuple[str, bytes, str]]

MAX_WAIT_PER_REQUEST = 60.0  # the service's longest `?wait=`


class JobParams(TypedDict, total=False):
    """One item of `jobs.create_batch`: `jobs.create`'s arguments, plus `file`/`files` uploaded first."""

    agent_id: str
    input_data: dict[str, Any]
    config: dict[str, Any]
    file_ids: list[str]
    priority: int
    webhook: str
    webhook_events_filter: list[str]
    file: FileInput
    files: list[FileInput]


@dataclass
class Page(Generic[T]):
    data: list[T]
    has_more: bool
    next_cursor: str | None


def read_file(value: FileInput) -> FileTuple:
    """(filename, bytes, content type) of a file given any way `FileInput` allows. The bytes are read
    once so that a retried request sends them again."""
    if isinstance(value, tuple):
        name, content = value[0], value[1]
        kind = value[2] if len(value) == 3 else None
    elif isinstance(value, (str, os.PathLike)):
        name = os.path.basename(os.fspath(value))
        with open(value, "rb") as handle:
            content = handle.read()
        kind = None
    else:
        name = os.path.basename(str(getattr(value, "name", "file")))
        content = value.read()
        kind = None
    return name, content, kind or mimetypes.guess_type(name)[0] or "application/octet-stream"


def _json_of(response: httpx.Response) -> Any:
    return response.json()


def _clean(params: Mapping[str, Any]) -> dict[str, Any]:
    """Query parameters without the unset ones; booleans and moments as the service spells them."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, datetime):
            value = value.isoformat()
        out[key] = value
    return out


def call(method: str, path: str, model: type[T], **fields: Any) -> Operation[T]:
    response = yield Request(method, path, **fields)
    return from_dict(model, _json_of(response))


def call_json(method: str, path: str, **fields: Any) -> Operation[Any]:
    response = yield Request(method, path, **fields)
    return None if response.status_code == 204 or not response.content else _json_of(response)


def call_list(method: str, path: str, model: type[T], **fields: Any) -> Operation[list[T]]:
    response = yield Request(method, path, **fields)
    return [from_dict(model, item) for item in _json_of(response)]


def raw(method: str, path: str, **fields: Any) -> Operation[bytes]:
    response = yield Request(method, path, **fields)
    content: bytes = response.content
    return content


def page(path: str, model: type[T], params: Mapping[str, Any]) -> Operation[Page[T]]:
    response = yield Request("GET", path, params=_clean(params))
    body = _json_of(response)
    return Page([from_dict(model, item) for item in body["data"]], bool(body["has_more"]), body.get("next_cursor"))


# Files


def upload_file(
    file: FileInput, *, metadata: Mapping[str, Any] | None = None, agent_id: str | None = None
) -> Operation[File]:
    data = {"metadata": json.dumps(dict(metadata))} if metadata else {}
    if agent_id:
        data["agent_id"] = agent_id
    return (yield from call("POST", "/v1/files", File, data=data or None, files=[("file", read_file(file))]))


def upload_large(file: FileInput) -> Operation[File]:
    """The three steps of a pre-signed upload: ask for a URL, PUT the bytes there, confirm."""
    name, content, kind = read_file(file)
    body = {"filename": name, "content_type": kind, "size_bytes": len(content)}
    target = yield from call("POST", "/v1/files/upload-url", UploadUrl, json=body)
    yield Request(
        "PUT", target.upload_url, content=content, headers={"Content-Type": kind}, authenticated=False, timeout=600
    )
    return (yield from call("POST", f"/v1/files/{target.file_id}/confirm", File))


# Jobs


def create_job(
    agent_id: str,
    input_data: Mapping[str, Any] | None,
    config: Mapping[str, Any] | None,
    files: Sequence[FileInput] | None,
    file_ids: Sequence[str] | None,
    priority: int | None,
    idempotency_key: str | None,
    webhook: str | None = None,
    webhook_events_filter: Sequence[str] | None = None,
) -> Operation[Job]:
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    if files:  # one multipart request: the files and the job together, as the guide's curl does
        data: dict[str, str] = {"agent_id": agent_id}
        if input_data is not None:
            data["input_data"] = json.dumps(dict(input_data))
        if config is not None:
            data["config"] = json.dumps(dict(config))
        if file_ids:
            data["file_ids"] = ",".join(file_ids)
        if priority is not None:
            data["priority"] = str(priority)
        if webhook is not None:
            data["webhook"] = webhook
        if webhook_events_filter is not None:
            data["webhook_events_filter"] = ",".join(webhook_events_filter)
        parts = [("files", read_file(f)) for f in files]
        return (yield from call("POST", "/v1/jobs", Job, data=data, files=parts, headers=headers, timeout=600))
    body = _job_body(agent_id, input_data, config, file_ids, priority, webhook, webhook_events_filter)
    return (yield from call("POST", "/v1/jobs", Job, json=body, headers=headers))


def _job_body(
    agent_id: str,
    input_data: Mapping[str, Any] | None,
    config: Mapping[str, Any] | None,
    file_ids: Sequence[str] | None,
    priority: int | None,
    webhook: str | None = None,
    webhook_events_filter: Sequence[str] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"agent_id": agent_id}
    if input_data is not None:
        body["input_data"] = dict(input_data)
    if config is not None:
        body["config"] = dict(config)
    if file_ids:
        body["file_ids"] = list(file_ids)
    if priority is not None:
        body["priority"] = priority
    if webhook is not None:
        body["webhook"] = webhook
    if webhook_events_filter is not None:
        body["webhook_events_filter"] = list(webhook_events_filter)
    return body


def create_batch(items: Iterable[JobParams | Mapping[str, Any]], idempotency_key: str | None) -> Operation[list[Job]]:
    """Each item's `file`/`files` uploaded first, then one `POST /v1/jobs/batch`: the service creates all
    the jobs or none (and checks each job's files against its agent's types and limits)."""
    bodies = []
    for item in items:
        unknown = set(item) - set(JobParams.__annotations__)
        if unknown:
            raise CoExAIError(f"Unknown job field(s): {', '.join(sorted(unknown))}", code="INVALID_ARGUMENT")
        agent_id = str(item["agent_id"])
        uploads = [*([item["file"]] if "file" in item else []), *item.get("files", [])]
        file_ids = list(item.get("file_ids", []))
        for upload in uploads:
            file_ids.append((yield from upload_file(upload)).id)
        bodies.append(
            _job_body(
                agent_id,
                item.get("input_data"),
                item.get("config"),
                file_ids,
                item.get("priority"),
                item.get("webhook"),
                item.get("webhook_events_filter"),
            )
        )
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    response = yield Request("POST", "/v1/jobs/batch", json={"jobs": bodies}, headers=headers)
    return [from_dict(Job, job) for job in _json_of(response)["data"]]


def wait_for_completion(job_id: str, timeout: float | None, poll_interval: float) -> Operation[Job]:
    """The job once final. Each request long-polls (`?wait=`, up to 60 s), so a job is seen done as soon
    as it is; `poll_interval` only paces the requests when a service answers a long poll early."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = MAX_WAIT_PER_REQUEST if deadline is None else deadline - time.monotonic()
        window = max(0.0, min(MAX_WAIT_PER_REQUEST, left))
        started = time.monotonic()
        job = yield from call(
            "GET", f"/v1/jobs/{job_id}", Job, params={"wait": round(window, 3)} if window else None, timeout=window + 30
        )
        if job.status in FINAL_STATUSES:
            return job
        if deadline is not None and time.monotonic() >= deadline:
            raise WaitTimeoutError(
                f"Job {job_id} is still {job.status} after {timeout} s.", code="WAIT_TIMEOUT", details={"job": job_id}
            )
        if time.monotonic() - started < window / 2:
            yield Sleep(min(poll_interval, max(0.0, left)))


def get_output(
    job_id: str, output_format: str | None, wait: float | None, poll_interval: float
) -> Operation[JobOutput]:
    """A completed job's output. The guide reads it right after creating the job, so by default a job not
    completed yet is waited for (up to `wait` seconds) instead of answering 409; `wait=0` does not wait."""
    params = {"format": output_format} if output_format and output_format != "json" else None
    try:
        response = yield Request("GET", f"/v1/jobs/{job_id}/output", params=params)
    except ConflictError as exc:
        if not wait or exc.details.get("status") in FINAL_STATUSES:
            raise
        yield from wait_for_completion(job_id, wait, poll_interval)
        response = yield Request("GET", f"/v1/jobs/{job_id}/output", params=params)
    kind = response.headers.get("content-type", "")
    if kind.startswith("application/json"):
        body = _json_of(response)
        if isinstance(body, dict) and {"job_id", "content"} <= set(body):  # the JSON output itself
            return from_dict(JobOutput, body)
    job = yield from call("GET", f"/v1/jobs/{job_id}", Job)  # a rendering: its job's fields come from the job
    content: Any = response.text if kind.startswith("text/") else response.content
    return JobOutput(job.id, job.agent_id, job.status, content, job.finished_at, format=output_format or "json")
