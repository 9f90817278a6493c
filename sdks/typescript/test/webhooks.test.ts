import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { after, before, describe, test } from "node:test";

import { CoExAI, WebhookVerificationError, type WebhookEvent } from "@coexai/sdk";

import { API_KEY, BASE_URL, client, listen, readBody, until } from "./support.js";

const secret = `whsec_${randomBytes(24).toString("base64")}`;

/** A delivery signed as the service signs one (src/backplane/webhooks/signing.py), with node:crypto. */
function signed(body: string, options: { key?: string; timestamp?: number } = {}) {
  const key = options.key ?? secret;
  const id = "evt_0123456789abcdef01234567";
  const timestamp = String(options.timestamp ?? Math.floor(Date.now() / 1000));
  const standard = createHmac("sha256", Buffer.from(key.slice("whsec_".length), "base64"))
    .update(`${id}.${timestamp}.${body}`)
    .digest("base64");
  return {
    "x-coexai-signature": `sha256=${createHmac("sha256", key).update(body).digest("hex")}`,
    "webhook-id": id,
    "webhook-timestamp": timestamp,
    "webhook-signature": `v1,${standard}`,
  };
}

const body = JSON.stringify({
  event: "job.completed",
  type: "job.completed",
  timestamp: "2024-01-15T10:30:00.000Z",
  webhook_id: "wh_1",
  data: { id: "job_1", status: "completed" },
});

describe("webhook signatures", () => {
  const coexai = new CoExAI({ apiKey: "coexai_test_unused", webhookSecret: secret, baseUrl: BASE_URL });

  test("either scheme verifies the raw body", async () => {
    const headers = signed(body);
    const event = await coexai.webhooks.constructEvent(body, headers);
    assert.equal(event.type, "job.completed");
    assert.equal(event.data.id, "job_1");
    assert.equal(event.id, "evt_0123456789abcdef01234567");
    const { "x-coexai-signature": coexaiOnly } = headers;
    await coexai.webhooks.verify(body, { "X-CoExAI-Signature": coexaiOnly });
    await coexai.webhooks.verify(new TextEncoder().encode(body), new Headers(headers), undefined, { scheme: "standard" });
  });

  test("an altered body, another secret, a stale timestamp or no signature is refused", async () => {
    const headers = signed(body);
    const cases: [string, Record<string, string>, object?][] = [
      [body.replace("job_1", "job_2"), headers],
      [body, signed(body, { key: `whsec_${randomBytes(24).toString("base64")}` })],
      [body, signed(body, { timestamp: Math.floor(Date.now() / 1000) - 600 })],
      [body, {}],
      [body.replace("job_1", "job_2"), { "x-coexai-signature": headers["x-coexai-signature"] }],
      [body, { "x-coexai-signature": headers["x-coexai-signature"] }, { scheme: "standard" }],
    ];
    for (const [payload, given, options] of cases) {
      await assert.rejects(coexai.webhooks.constructEvent(payload, given, undefined, options), WebhookVerificationError);
    }
  });

  test("during a rotation either secret verifies", async () => {
    const old = `whsec_${randomBytes(24).toString("base64")}`;
    await coexai.webhooks.verify(body, signed(body, { key: old }), [secret, old]);
  });
});

describe("webhooks.handler with deliveries from the real service", () => {
  const received: WebhookEvent[] = [];
  let receiver: Awaited<ReturnType<typeof listen>>;
  let coexai: CoExAI;
  let webhookId: string;

  before(async () => {
    // The secret is the service's, known once the endpoint exists: the receiver's handler is made then.
    let handler: ((req: IncomingMessage, res: ServerResponse) => Promise<void>) | undefined;
    receiver = await listen((req, res) => {
      if (handler) void handler(req, res);
      else res.writeHead(503).end();
    });
    const admin = client();
    const webhook = await admin.webhooks.create({
      url: `${receiver.url}/webhooks/coexai`,
      events: ["job.completed"],
      description: "sdk test",
    });
    assert.match(webhook.secret, /^whsec_/);
    webhookId = webhook.id;
    coexai = new CoExAI({ apiKey: API_KEY, baseUrl: BASE_URL, webhookSecret: webhook.secret });
    handler = coexai.webhooks.handler((event) => {
      received.push(event);
    });
  });
  after(async () => {
    await client().webhooks.delete(webhookId);
    await receiver.close();
  });

  test("a job.completed delivery is verified and handed to fn with type and data", async () => {
    const job = await coexai.jobs.create({ agentId: "test-noop", input: { echo: "hook" } });
    const event = await until("the job.completed delivery", () =>
      received.find((e) => e.type === "job.completed" && e.data.id === job.id),
    );
    assert.equal(event.data.status, "completed");
    const deliveries = await fetch(`${BASE_URL}/webhooks/${webhookId}/deliveries`, {
      headers: { Authorization: `Bearer ${API_KEY}` },
    }).then((r) => r.json() as Promise<{ data: { response_status_code?: number; status?: string }[] }>);
    assert.ok(deliveries.data.length > 0);
  });

  test("a forged request gets 401 and never reaches fn", async () => {
    const before = received.length;
    const answer = await fetch(`${receiver.url}/webhooks/coexai`, {
      method: "POST",
      headers: { "content-type": "application/json", ...signed(body) }, // our secret, not the endpoint's
      body,
    });
    assert.equal(answer.status, 401);
    assert.equal(received.length, before);
  });

  test("behind express.json() or express.raw() (a parsed or a Buffer body) it still verifies", async () => {
    const local = new CoExAI({ apiKey: "coexai_test_unused", baseUrl: BASE_URL, webhookSecret: secret });
    const events: WebhookEvent[] = [];
    const handle = local.webhooks.handler((event) => void events.push(event));
    const asExpress = (parsed: "json" | "raw") =>
      listen(async (req, res) => {
        const raw = await readBody(req);
        (req as IncomingMessage & { body?: unknown }).body = parsed === "json" ? JSON.parse(raw.toString()) : raw;
        await handle(req as never, res, (error) => res.writeHead(500).end(String(error)));
      });
    for (const parsed of ["json", "raw"] as const) {
      const app = await asExpress(parsed);
      const ok = await fetch(app.url, { method: "POST", headers: signed(body), body });
      assert.equal(ok.status, 200, parsed);
      assert.deepEqual(await ok.json(), { received: true });
      const bad = await fetch(app.url, { method: "POST", headers: signed(body), body: body.replace("job_1", "job_9") });
      assert.equal(bad.status, 401, parsed);
      await app.close();
    }
    assert.equal(events.length, 2);
  });

  test("when fn throws, next(error) gets it (or 500), so the platform retries", async () => {
    const local = new CoExAI({ apiKey: "coexai_test_unused", baseUrl: BASE_URL, webhookSecret: secret });
    const handle = local.webhooks.handler(() => {
      throw new Error("database down");
    });
    const app = await listen((req, res) => void handle(req as never, res));
    const answer = await fetch(app.url, { method: "POST", headers: signed(body), body });
    assert.equal(answer.status, 500);
    await app.close();
  });
});
