/**
 * Retries through a loopback proxy in front of the real service: the proxy loses the first answer (the
 * request reached the service, the client sees a 503) or answers 429 with Retry-After, then forwards.
 */
import assert from "node:assert/strict";
import type { IncomingMessage, ServerResponse } from "node:http";
import { after, before, describe, test } from "node:test";

import { APIConnectionError, InternalServerError, RateLimitError } from "@coexai/sdk";

import { BASE_URL, client, listen, readBody } from "./support.js";

interface Seen {
  method: string;
  path: string;
  idempotencyKey: string | undefined;
  at: number;
}

type Fault = (req: IncomingMessage, res: ServerResponse, upstream: Response | undefined) => boolean;

const upstreamOrigin = new URL(BASE_URL).origin;
let seen: Seen[] = [];
let faults: Fault[] = [];
let proxy: Awaited<ReturnType<typeof listen>>;

/** Forwards to the service; each fault in `faults` gets one request and may answer it instead. */
async function forward(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readBody(req);
  seen.push({
    method: req.method ?? "",
    path: req.url ?? "",
    idempotencyKey: req.headers["idempotency-key"] as string | undefined,
    at: Date.now(),
  });
  const fault = faults.shift();
  if (fault?.(req, res, undefined)) return;
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (typeof value === "string" && !["host", "connection", "content-length"].includes(name)) headers.set(name, value);
  }
  const upstream = await fetch(upstreamOrigin + (req.url ?? "/"), {
    method: req.method,
    headers,
    body: ["GET", "HEAD"].includes(req.method ?? "GET") ? undefined : new Uint8Array(body),
  });
  if (fault?.(req, res, upstream)) return;
  res.statusCode = upstream.status;
  upstream.headers.forEach((value, name) => {
    if (!["content-encoding", "content-length", "transfer-encoding", "connection"].includes(name)) res.setHeader(name, value);
  });
  res.end(Buffer.from(await upstream.arrayBuffer()));
}

/** The service did the work, but its answer is lost: the client gets a 503. */
const loseAnswer: Fault = (_req, res, upstream) => {
  if (upstream === undefined) return false;
  res.statusCode = 503;
  res.end(JSON.stringify({ error: { code: "SERVICE_UNAVAILABLE", message: "lost", details: {}, request_id: null } }));
  return true;
};

const rateLimited: Fault = (_req, res) => {
  res.statusCode = 429;
  res.setHeader("Retry-After", "1");
  res.setHeader("Content-Type", "application/json");
  res.end(JSON.stringify({ error: { code: "RATE_LIMIT_EXCEEDED", message: "slow down", details: { limit: 60 }, request_id: "req_x" } }));
  return true;
};

describe("retries", () => {
  before(async () => {
    proxy = await listen((req, res) => void forward(req, res));
  });
  after(async () => proxy.close());

  test("a POST whose answer was lost is retried with the same Idempotency-Key and creates one job", async () => {
    seen = [];
    faults = [loseAnswer];
    const coexai = client({ baseUrl: `${proxy.url}/v1` });
    const job = await coexai.jobs.create({ agentId: "test-noop", input: { echo: "once" } });
    const posts = seen.filter((r) => r.method === "POST");
    assert.equal(posts.length, 2);
    assert.ok(posts[0]?.idempotencyKey, "the first attempt carries a key");
    assert.equal(posts[1]?.idempotencyKey, posts[0]?.idempotencyKey);

    const direct = client();
    let mine = 0;
    for await (const other of direct.jobs.list({ agentId: "test-noop", limit: 100 })) {
      if (JSON.stringify(other.inputData) === JSON.stringify({ echo: "once" })) mine++;
    }
    assert.equal(mine, 1, "the retry replayed the first job instead of making a second");
    assert.equal((await direct.jobs.get(job.id)).id, job.id);
    await direct.jobs.waitForCompletion(job.id, { timeout: 30_000 });
  });

  test("a 429 is retried after its Retry-After", async () => {
    seen = [];
    faults = [rateLimited];
    const coexai = client({ baseUrl: `${proxy.url}/v1` });
    const agents = await coexai.agents.list();
    assert.ok(agents.some((agent) => agent.id === "maya"));
    assert.equal(seen.length, 2);
    assert.ok(seen[1]!.at - seen[0]!.at >= 950, `waited ${seen[1]!.at - seen[0]!.at} ms`);
  });

  test("once the retries are used up the typed error is thrown", async () => {
    faults = [rateLimited, rateLimited];
    const limited = await client({ baseUrl: `${proxy.url}/v1`, maxRetries: 1 }).agents.list().catch((e: unknown) => e);
    assert.ok(limited instanceof RateLimitError);
    assert.equal(limited.code, "RATE_LIMIT_EXCEEDED");
    assert.deepEqual(limited.details, { limit: 60 });
    assert.equal(limited.requestId, "req_x");
    assert.equal(limited.headers.get("retry-after"), "1");

    faults = [loseAnswer];
    const lost = await client({ baseUrl: `${proxy.url}/v1`, maxRetries: 0 }).agents.list().catch((e: unknown) => e);
    assert.ok(lost instanceof InternalServerError);
    assert.equal(lost.status, 503);
  });

  test("no service at all is an APIConnectionError after the retries", async () => {
    const closed = await listen(() => undefined);
    const url = closed.url;
    await closed.close();
    const error = await client({ baseUrl: `${url}/v1`, maxRetries: 1 }).agents.list().catch((e: unknown) => e);
    assert.ok(error instanceof APIConnectionError, String(error));
  });
});
