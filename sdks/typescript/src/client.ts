import { CoExAIError } from "./errors.js";
import { HttpClient } from "./http.js";
import { Agents } from "./resources/agents.js";
import { Events } from "./resources/events.js";
import { Files } from "./resources/files.js";
import { Jobs } from "./resources/jobs.js";
import { Webhooks } from "./resources/webhooks.js";
import type { JsonObject } from "./types.js";
import { camelize } from "./wire.js";

export const VERSION = "0.3.0";
export const DEFAULT_BASE_URL = "https://api.coexai.com/v1";

export interface ClientOptions {
  /** `coexai_live_…` or `coexai_test_…`; default: the `COEXAI_API_KEY` environment variable (Node). */
  apiKey?: string | undefined;
  /** The endpoint secret (`whsec_…`) that `webhooks.handler` and `webhooks.verify` check with. */
  webhookSecret?: string | undefined;
  /** Default `https://api.coexai.com/v1`; `/v1` is added when the URL has no path. */
  baseUrl?: string | undefined;
  /** Retries of a 429, 5xx or connection error (default 3). */
  maxRetries?: number;
  /** Milliseconds per request (default 60000; long polls get their wait on top). */
  timeout?: number;
  /** Another `fetch` (a proxy agent, a test double); default the global one. */
  fetch?: typeof fetch;
  /**
   * The mode to act in, sent as `X-Backplane-Mode` on every request. An API key acts in its own mode
   * (naming the other one is a 400); a signed-in user's access token acts in live mode unless this is
   * `"test"`. Default: not sent.
   */
  mode?: Mode | undefined;
  /** Headers sent on every request (the client's own, such as `Authorization`, win). */
  headers?: Record<string, string> | undefined;
}

export type Mode = "live" | "test";
export const MODE_HEADER = "X-Backplane-Mode";

export class CoExAI {
  readonly jobs: Jobs;
  readonly files: Files;
  readonly agents: Agents;
  readonly webhooks: Webhooks;
  readonly events: Events;
  readonly users: { me(): Promise<JsonObject> };
  readonly baseUrl: string;
  readonly mode: Mode | undefined;
  private readonly options: ClientOptions;

  constructor(options: ClientOptions = {}) {
    this.options = { ...options };
    const apiKey = options.apiKey ?? env("COEXAI_API_KEY");
    if (!apiKey) {
      throw new CoExAIError("no API key: pass apiKey to new CoExAI() or set COEXAI_API_KEY");
    }
    const fetchImpl = options.fetch ?? globalThis.fetch?.bind(globalThis);
    if (typeof fetchImpl !== "function") throw new CoExAIError("no fetch here: pass options.fetch");
    this.baseUrl = withVersion(options.baseUrl ?? env("COEXAI_BASE_URL") ?? DEFAULT_BASE_URL);
    if (options.mode !== undefined && options.mode !== "live" && options.mode !== "test") {
      throw new CoExAIError(`mode must be "live" or "test", not ${JSON.stringify(options.mode)}`);
    }
    this.mode = options.mode;
    const headers = { ...options.headers, ...(options.mode ? { [MODE_HEADER]: options.mode } : {}) };
    const http = new HttpClient({
      headers,
      apiKey,
      baseUrl: this.baseUrl,
      maxRetries: options.maxRetries ?? 3,
      timeout: options.timeout ?? 60_000,
      fetch: fetchImpl,
      userAgent: `coexai-sdk-typescript/${VERSION}`,
    });
    this.jobs = new Jobs(http);
    this.files = new Files(http);
    this.agents = new Agents(http);
    this.webhooks = new Webhooks(http, options.webhookSecret ?? env("COEXAI_WEBHOOK_SECRET"));
    this.events = new Events(http);
    this.users = { me: async () => camelize<JsonObject>(await http.json<JsonObject>("GET", "/users/me")) };
  }

  /** A client like this one with some options changed, e.g. `client.withOptions({ mode: "test" })`. */
  withOptions(options: Partial<ClientOptions>): CoExAI {
    return new CoExAI({ ...this.options, ...options });
  }
}

/** `https://host` → `https://host/v1`; a URL with a path is kept as given. */
function withVersion(baseUrl: string): string {
  const url = new URL(baseUrl);
  if (url.pathname === "/" || url.pathname === "") url.pathname = "/v1";
  return url.toString().replace(/\/+$/, "");
}

function env(name: string): string | undefined {
  const process = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return process?.env?.[name] || undefined;
}
