"""Upload benchmark: `make bench-uploads`, or `uv run python bench/uploads.py --pid PID` against a running server.

Against the server at --url (whose process id is --pid, to read its memory from /proc):

1. registers a fresh user (owner of a fresh organization) and buys the enterprise plan through the
   local-mode checkout (no STRIPE_SECRET_KEY; completed by the same account with a POST), so the
   organization may upload up to 500 MB;
2. uploads a --small-mb text file (the per-request overhead), then a --size-mb one (default 200),
   each as a multipart body streamed from a generator (the client never holds the file), and
   downloads both back, checking each byte count and sha256 against what was sent;
3. uploads a --multipart-mb file (default 300) as a resumable multipart upload (POST /v1/files/uploads,
   --part-mb parts PUT --parallel at a time to their part URLs, then complete), checking its size and
   sha256, as one operation from the POST to the completed file;
4. samples the server's VmRSS every --sample-ms while each operation runs, and resets its VmHWM
   before it (`/proc/PID/clear_refs`, when allowed) so that VmHWM after it is the exact peak
   between samples; prints throughput and the server's memory growth against the file's size.

The files are deleted at the end; the user, organization and subscription stay in PostgreSQL.
MB here is MiB (2**20 bytes), as in the plans' upload limits.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import secrets
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from _api import call_json, sign_up

MB = 1024 * 1024
ENTERPRISE_MAX_MB = 500
BLOCK_BYTES = MB  # the generator's chunk: one block of text lines, sent again and again
FILENAME = "bench-upload.txt"


def _text_block(size: int) -> bytes:
    """`size` bytes of numbered ASCII lines (the last one cut where the block ends)."""
    lines: list[bytes] = []
    total = 0
    n = 0
    while total < size:
        line = f"{n:08d} backplane upload benchmark: the quick brown fox jumps over the lazy dog\n".encode()
        lines.append(line)
        total += len(line)
        n += 1
    return b"".join(lines)[:size]


BLOCK = _text_block(BLOCK_BYTES)


def file_chunks(size: int) -> Iterator[bytes]:
    """The benchmark file's bytes, BLOCK_BYTES at a time (the same block object each time)."""
    whole, rest = divmod(size, BLOCK_BYTES)
    for _ in range(whole):
        yield BLOCK
    if rest:
        yield BLOCK[:rest]


def file_slice(start: int, length: int) -> bytes:
    """Bytes `start` to `start + length` of the benchmark file (one part of a multipart upload)."""
    offset = start % BLOCK_BYTES
    whole = (BLOCK * ((offset + length) // BLOCK_BYTES + 1))[offset : offset + length]
    return whole


def file_sha256(size: int) -> str:
    digest = hashlib.sha256()
    for chunk in file_chunks(size):
        digest.update(chunk)
    return digest.hexdigest()


class MultipartBody:
    """A multipart/form-data body with one `file` part, produced chunk by chunk with its exact length."""

    def __init__(self, size: int, filename: str = FILENAME) -> None:
        self.size = size
        self.boundary = f"bench-{secrets.token_hex(16)}"
        self.head = (
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: text/plain\r\n"
            "\r\n"
        ).encode()
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    @property
    def length(self) -> int:
        return len(self.head) + self.size + len(self.tail)

    async def stream(self) -> AsyncIterator[bytes]:
        yield self.head
        for chunk in file_chunks(self.size):
            yield chunk
        yield self.tail


# -- the server's memory ----------------------------------------------------------------------


def _status_kb(pid: int, *fields: str) -> dict[str, int]:
    """Fields of /proc/PID/status given in kB (VmRSS, VmHWM), in bytes."""
    found: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in fields:
                found[key] = int(value.split()[0]) * 1024
    return found


def rss(pid: int) -> int:
    return _status_kb(pid, "VmRSS")["VmRSS"]


def hwm(pid: int) -> int:
    return _status_kb(pid, "VmHWM")["VmHWM"]


def reset_hwm(pid: int) -> bool:
    """Reset the process's VmHWM to its current RSS (Linux 4.0+, same user); False if not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def check_server_pid(pid: int) -> str:
    """The server's command line; exits unless PID is a Python process serving backplane (not `uv run`)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    except OSError as exc:
        sys.exit(f"bench: cannot read /proc/{pid}/cmdline: {exc.strerror}")
    words = [a.decode("utf-8", "replace") for a in argv]
    try:
        exe = Path(f"/proc/{pid}/exe").resolve().name
    except OSError:
        exe = Path(words[0]).name
    if not exe.startswith("python") or "serve" not in words or not any("backplane" in w for w in words):
        sys.exit(
            f"bench: process {pid} ({exe}: {' '.join(words)}) is not the backplane server's Python process; "
            "pass the PID of `python -m backplane.cli serve` (not of `uv run`)"
        )
    return " ".join(words)


class RssSampler:
    """VmRSS of a process every `interval` seconds, in a thread (unaffected by the client's event loop)."""

    def __init__(self, pid: int, interval: float) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append(rss(self.pid))
            if self._stop.wait(self.interval):
                break

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(rss(self.pid))

    @property
    def peak(self) -> int:
        return max(self.samples)


@dataclass
class Result:
    operation: str
    size: int
    seconds: float
    rss_before: int
    peak_sampled: int
    samples: int
    hwm_after: int
    hwm_exact: bool  # VmHWM was reset just before: it is this operation's own peak

    @property
    def peak(self) -> int:
        return max(self.peak_sampled, self.hwm_after) if self.hwm_exact else self.peak_sampled

    @property
    def growth(self) -> int:
        return self.peak - self.rss_before

    @property
    def mb_per_s(self) -> float:
        return self.size / MB / self.seconds


# -- the benchmark ----------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, client: httpx.AsyncClient) -> None:
        self.args = args
        self.client = client
        self.tag = secrets.token_hex(4)
        self.files: list[str] = []  # uploaded, for cleanup

    async def _json(self, method: str, path: str, expect: int, body: Any = None) -> Any:
        return await call_json(self.client, method, path, expect, body)

    async def sign_up(self) -> None:
        await sign_up(self.client, "Upload Bench", self.tag)

    async def upgrade_to_enterprise(self) -> int:
        """Buy the enterprise plan through local-mode checkout; the organization's upload limit in bytes."""
        checkout = await self._json(
            "POST",
            "/api/v1/subscriptions/checkout/",
            200,
            {
                "price_id": "price_enterprise_monthly",
                "seats": 1,
                "success_url": "https://example.com/success",
                "cancel_url": "https://example.com/cancel",
            },
        )
        # The URL is built from PUBLIC_BASE_URL; open its path on the server measured here.
        url = checkout["checkout_url"]
        path = urlsplit(url).path
        if "/local-checkout/" not in path:
            sys.exit(f"bench: checkout URL {url} is not local billing mode's (STRIPE_SECRET_KEY is set)")
        completed = await self.client.post(path)  # the account that started it completes it
        if completed.status_code != 303:
            sys.exit(f"bench: POST {path} answered {completed.status_code}: {completed.text[:300]}")
        current = await self._json("GET", "/api/v1/subscriptions/current/", 200)
        if current["plan"] != "enterprise":
            sys.exit(f"bench: after checkout the plan is {current['plan']!r}, not enterprise")
        limit: int = current["limits"]["max_upload_bytes"]
        return limit

    def _measure_start(self) -> tuple[int, bool]:
        exact = reset_hwm(self.args.pid)
        return rss(self.args.pid), exact

    async def upload(self, size: int) -> tuple[Result, dict[str, Any]]:
        body = MultipartBody(size)
        headers = {"Content-Type": body.content_type, "Content-Length": str(body.length)}
        before, exact = self._measure_start()
        with RssSampler(self.args.pid, self.args.sample_ms / 1000) as sampler:
            started = time.perf_counter()
            response = await self.client.post("/v1/files", content=body.stream(), headers=headers)
            seconds = time.perf_counter() - started
        if response.status_code != 201:
            sys.exit(f"bench: POST /v1/files ({size:,} bytes) answered {response.status_code}: {response.text[:300]}")
        file: dict[str, Any] = response.json()
        self.files.append(file["id"])
        if file["size_bytes"] != size:
            sys.exit(f"bench: the server stored {file['size_bytes']:,} bytes, {size:,} were sent")
        if file["sha256"] != file_sha256(size):
            sys.exit(f"bench: the server's sha256 {file['sha256']} is not that of the bytes sent")
        result = Result(
            f"upload {_mb(size)}",
            size,
            seconds,
            before,
            sampler.peak,
            len(sampler.samples),
            hwm(self.args.pid),
            exact,
        )
        return result, file

    async def download(self, file: dict[str, Any]) -> Result:
        path = f"/v1/files/{file['id']}/content"
        digest = hashlib.sha256()
        received = 0
        before, exact = self._measure_start()
        with RssSampler(self.args.pid, self.args.sample_ms / 1000) as sampler:
            started = time.perf_counter()
            async with self.client.stream("GET", path) as response:
                if response.status_code != 200:
                    await response.aread()
                    sys.exit(f"bench: GET {path} answered {response.status_code}: {response.text[:300]}")
                async for chunk in response.aiter_raw():
                    digest.update(chunk)
                    received += len(chunk)
            seconds = time.perf_counter() - started
        if received != file["size_bytes"]:
            sys.exit(f"bench: GET {path} sent {received:,} bytes, the file has {file['size_bytes']:,}")
        if digest.hexdigest() != file["sha256"]:
            sys.exit(f"bench: GET {path}: sha256 {digest.hexdigest()} is not the server's {file['sha256']}")
        return Result(
            f"download {_mb(received)}",
            received,
            seconds,
            before,
            sampler.peak,
            len(sampler.samples),
            hwm(self.args.pid),
            exact,
        )

    async def multipart_upload(self, size: int, part_size: int, parallel: int) -> tuple[Result, dict[str, Any]]:
        """POST /v1/files/uploads, the parts PUT `parallel` at a time (each part held by this client while it
        is sent, never by the server), then complete: one operation."""
        before, exact = self._measure_start()
        with RssSampler(self.args.pid, self.args.sample_ms / 1000) as sampler:
            started = time.perf_counter()
            upload = await self._json(
                "POST",
                "/v1/files/uploads",
                201,
                {"filename": FILENAME, "content_type": "text/plain", "size_bytes": size, "part_size": part_size},
            )
            self.files.append(upload["file_id"])
            gate = asyncio.Semaphore(parallel)

            async def send(part: dict[str, Any]) -> None:
                async with gate:
                    data = file_slice((part["part_number"] - 1) * part_size, part["size_bytes"])
                    url = part["upload_url"]
                    target = urlsplit(url)
                    if target.path.startswith("/v1/files/uploads/"):  # local storage: this server's own URL
                        url = f"{target.path}?{target.query}"
                    response = await self.client.put(url, content=data)
                    if response.status_code != 200:
                        sys.exit(f"bench: PUT part {part['part_number']} answered {response.status_code}")

            await asyncio.gather(*(send(part) for part in upload["parts"]))
            file: dict[str, Any] = await self._json("POST", f"/v1/files/uploads/{upload['id']}/complete", 200)
            seconds = time.perf_counter() - started
        if file["size_bytes"] != size or file["sha256"] != file_sha256(size):
            sys.exit(f"bench: the multipart upload's size or sha256 is not that of the bytes sent: {file}")
        parts = len(upload["parts"])
        result = Result(
            f"multipart {_mb(size)} ({parts}x{_mb(part_size)}, {parallel} at once)",
            size,
            seconds,
            before,
            sampler.peak,
            len(sampler.samples),
            hwm(self.args.pid),
            exact,
        )
        return result, file

    async def cleanup(self) -> None:
        for file_id in self.files:
            response = await self.client.delete(f"/v1/files/{file_id}")
            if response.status_code != 204:
                print(f"bench: DELETE /v1/files/{file_id} answered {response.status_code}", file=sys.stderr)
        self.files.clear()


# -- output -----------------------------------------------------------------------------------


def _mb(n: int) -> str:
    return f"{n / MB:.0f} MB" if n % MB == 0 else f"{n / MB:.1f} MB"


def _mib(n: int) -> str:
    return f"{n / MB:.1f}"


def print_table(results: Sequence[Result], sample_ms: int) -> None:
    print(f"\nServer memory is VmRSS of the server process, sampled every {sample_ms} ms, in MB")
    header = (
        f"{'operation':<42} {'size MB':>8} {'seconds':>8} {'MB/s':>8} {'RSS before':>10} {'peak during':>11} "
        f"{'growth':>8} {'growth/size':>11}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.operation:<42} {_mib(r.size):>8} {r.seconds:>8.3f} {r.mb_per_s:>8.1f} {_mib(r.rss_before):>10} "
            f"{_mib(r.peak):>11} {_mib(r.growth):>8} {r.growth / r.size:>11.1%}"
        )
    exact = all(r.hwm_exact for r in results)
    if exact:
        print(
            "(peak during: the larger of the highest sample and VmHWM, reset through /proc/PID/clear_refs "
            "before each operation; samples and VmHWM per row:"
        )
    else:
        print(
            "(peak during: the highest sample; VmHWM could not be reset, so it is the process lifetime's peak; "
            "samples and VmHWM per row:"
        )
    for r in results:
        print(
            f"  {r.operation}: {r.samples} samples, highest {_mib(r.peak_sampled)} MB; "
            f"VmHWM after {_mib(r.hwm_after)} MB{'' if r.hwm_exact else ' (lifetime)'}"
        )
    print(")")


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the running server")
    parser.add_argument(
        "--pid", type=int, required=True, help="the server's process id (the Python process, not `uv run`)"
    )
    parser.add_argument("--size-mb", type=int, default=200, help="the large file's size in MB (MiB)")
    parser.add_argument("--small-mb", type=int, default=1, help="the small (per-request overhead) file's size")
    parser.add_argument("--sample-ms", type=int, default=50, help="RSS sampling interval in milliseconds")
    parser.add_argument(
        "--multipart-mb", type=int, default=300, help="the resumable multipart upload's size in MB; 0: none"
    )
    parser.add_argument("--part-mb", type=int, default=8, help="the multipart upload's part size (at least 5)")
    parser.add_argument("--parallel", type=int, default=4, help="parts in flight at once")
    args = parser.parse_args(argv)
    if args.multipart_mb and not 1 <= args.multipart_mb <= ENTERPRISE_MAX_MB:
        parser.error(f"--multipart-mb must be 0, or between 1 and {ENTERPRISE_MAX_MB} (the enterprise limit)")
    if not 5 <= args.part_mb <= 512 or not 1 <= args.parallel <= 64:
        parser.error("--part-mb must be between 5 and 512, --parallel between 1 and 64")
    for name in ("size_mb", "small_mb"):
        if not 1 <= getattr(args, name) <= ENTERPRISE_MAX_MB:
            parser.error(f"--{name.replace('_', '-')} must be between 1 and {ENTERPRISE_MAX_MB} (the enterprise limit)")
    if not 1 <= args.sample_ms <= 10_000:
        parser.error("--sample-ms must be between 1 and 10000")
    return args


async def run(args: argparse.Namespace) -> None:
    cmdline = check_server_pid(args.pid)
    timeout = httpx.Timeout(600.0, connect=10.0)
    async with httpx.AsyncClient(base_url=args.url, timeout=timeout) as client:
        health = await client.get("/api/v1/health/")
        health.raise_for_status()
        print(
            f"Backplane upload benchmark: {args.url} (version {health.json().get('version')}), "
            f"server pid {args.pid} ({cmdline}), files of {args.small_mb} MB and {args.size_mb} MB"
        )
        bench = Bench(args, client)
        started = time.perf_counter()
        await bench.sign_up()
        limit = await bench.upgrade_to_enterprise()
        print(f"organization upgraded to enterprise through local checkout: upload limit {limit / MB:.0f} MB")
        if args.size_mb * MB > limit:
            sys.exit(f"bench: --size-mb {args.size_mb} is over the organization's limit")
        try:
            results: list[Result] = []
            small, small_file = await bench.upload(args.small_mb * MB)
            results.append(small)
            results.append(await bench.download(small_file))
            large, large_file = await bench.upload(args.size_mb * MB)
            results.append(large)
            results.append(await bench.download(large_file))
            if args.multipart_mb:
                multipart, _ = await bench.multipart_upload(args.multipart_mb * MB, args.part_mb * MB, args.parallel)
                results.append(multipart)
            print_table(results, args.sample_ms)
        finally:
            await bench.cleanup()
        print(f"\nsha256 and sizes checked; files deleted; total {time.perf_counter() - started:.1f} s")


def main(argv: Sequence[str] | None = None) -> None:
    asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()
