/**
 * What every test file shares. The tests run against a real service: `COEXAI_BASE_URL` (e.g.
 * http://127.0.0.1:PORT/v1) and `COEXAI_API_KEY` (a key with the read, write and admin scopes of an
 * organization of its own) are set by tests/e2e/test_sdk_typescript.py, which starts `backplane serve` and
 * `backplane worker` with AGENT_TEST_MODE (agents test-noop, test-sleep, test-fail) and loopback webhook
 * targets allowed.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

import { CoExAI, type ClientOptions } from "@coexai/sdk";

export function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through tests/e2e/test_sdk_typescript.py`);
  return value;
}

export const BASE_URL = required("COEXAI_BASE_URL");
export const API_KEY = required("COEXAI_API_KEY");

export function client(options: ClientOptions = {}): CoExAI {
  return new CoExAI({ apiKey: API_KEY, baseUrl: BASE_URL, ...options });
}

/** A loopback HTTP server for `handler`; `url` ends without a slash. */
export async function listen(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function until<T>(what: string, check: () => T | undefined, seconds = 20): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
