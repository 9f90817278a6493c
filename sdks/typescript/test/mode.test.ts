/**
 * `mode` and `headers`: `X-Backplane-Mode` and the caller's own headers on every request, and the real
 * service's answer to them (a key acts in its own mode; naming the other one is a 400).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { APIError, CoExAI, CoExAIError, MODE_HEADER } from "@coexai/sdk";

import { API_KEY, BASE_URL, client } from "./support.js";

/** A fetch that answers an empty page (any call can read it) and keeps the headers of each request. */
function recording(): { fetch: typeof fetch; seen: Headers[] } {
  const seen: Headers[] = [];
  const fake: typeof fetch = async (_input, init) => {
    seen.push(new Headers(init?.headers));
    const empty = JSON.stringify({ data: [], has_more: false, next_cursor: null });
    return new Response(empty, { status: 200, headers: { "Content-Type": "application/json" } });
  };
  return { fetch: fake, seen };
}

describe("mode and headers", () => {
  test("mode is sent as X-Backplane-Mode on every request, headers too, and the client's own win", async () => {
    const { fetch, seen } = recording();
    const sdk = new CoExAI({
      apiKey: "coexai_test_x",
      baseUrl: "http://127.0.0.1:9/v1",
      fetch,
      mode: "test",
      headers: { "X-Extra": "1", Authorization: "Bearer not-this" },
    });
    assert.equal(sdk.mode, "test");
    await sdk.users.me();
    await sdk.events.list({ limit: 1 }).firstPage();
    assert.equal(seen.length, 2);
    for (const headers of seen) {
      assert.equal(headers.get(MODE_HEADER), "test");
      assert.equal(headers.get("X-Extra"), "1");
      assert.equal(headers.get("Authorization"), "Bearer coexai_test_x");
    }
    const live = sdk.withOptions({ mode: "live" });
    await live.users.me();
    assert.equal(seen[2]?.get(MODE_HEADER), "live");
    assert.equal(seen[2]?.get("X-Extra"), "1");
    await new CoExAI({ apiKey: "k", baseUrl: "http://127.0.0.1:9/v1", fetch }).users.me();
    assert.equal(seen[3]?.has(MODE_HEADER), false);
  });

  test("a mode that is neither live nor test is refused before any request", () => {
    assert.throws(() => client({ mode: "sandbox" as "test" }), CoExAIError);
  });

  test("the service: a key acts in its own mode, and naming the other is a 400", async () => {
    const me = await client({ mode: "live" }).users.me();
    assert.equal((me.auth as { livemode: boolean }).livemode, true);
    await assert.rejects(client({ mode: "test" }).users.me(), (error: unknown) => {
      assert.ok(error instanceof APIError);
      assert.equal(error.status, 400);
      assert.match(error.message, /live-mode API key; it cannot act in test mode/);
      return true;
    });
    // A test-mode key (made with the live one) in test mode.
    const made = await fetch(`${BASE_URL}/api-keys`, {
      method: "POST",
      headers: { Authorization: `Bearer ${API_KEY}`, "Content-Type": "application/json" },
      body: JSON.stringify({ name: "sdk mode test", mode: "test", scopes: ["read"] }),
    });
    assert.equal(made.status, 201, await made.clone().text());
    const testKey = ((await made.json()) as { key: string }).key;
    const asTest = await client({ apiKey: testKey, mode: "test" }).users.me();
    assert.equal((asTest.auth as { livemode: boolean }).livemode, false);
  });
});
