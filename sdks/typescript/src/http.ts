/**
 * One request to the platform API, with retries: 429 (after `Retry-After`), 5xx and connection errors
 * are tried again with exponential backoff and jitter. Every POST carries an `Idempotency-Key` (the
 * caller's, or one made here) that stays the same on its retries, so a retried creation whose first
 * answer was lost returns the first result instead of doing the work twice. Every POST route the SDK
 * calls (under /v1/jobs, /v1/files and /v1/webhooks) honours the key, so retrying any of them is safe;
 * PATCH and DELETE are idempotent by nature. 5xx answers are not stored by the service, so a retry after
 * one does the work.
 */
import { APIConnectionError, APIError } from "./errors.js";

export interface HttpOptions {
  apiKey: string;
  baseUrl: string;
  maxRetries: number;
  timeout: number;
  fetch: typeof fetch;
  userAgent: string;
  /** Sent on every request (`X-Backplane-Mode`, the caller's own); a request's own headers win. */
  headers?: Record<string, string>;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined | null>;
  json?: unknown;
  /** A body already encoded (multipart), sent as is on every attempt. */
  body?: Blob | ArrayBuffer | Uint8Array;
  headers?: Record<string, string>;
  idempotencyKey?: string;
  /** Milliseconds for this request, instead of the client's timeout. */
  timeout?: number;
  signal?: AbortSignal;
}

const MAX_RETRY_DELAY_MS = 60_000;
const INITIAL_RETRY_DELAY_MS = 500;

export class HttpClient {
  constructor(readonly options: HttpOptions) {}

  url(path: string, query?: RequestOptions["query"]): string {
    const url = new URL(this.options.baseUrl.replace(/\/+$/, "") + path);
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== null) url.searchParams.set(name, String(value));
    }
    return url.toString();
  }

  async json<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const response = await this.request(method, path, options);
    if (response.status === 204) return undefined as T;
    return (await response.json()) as T;
  }

  async request(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = {
      ...this.options.headers,
      Authorization: `Bearer ${this.options.apiKey}`,
      Accept: "application/json",
      ...options.headers,
    };
    let body: BodyInit | undefined;
    if (options.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(options.json);
    } else if (options.body !== undefined) {
      body = options.body as BodyInit;
    }
    if (method === "POST") {
      headers["Idempotency-Key"] = options.idempotencyKey ?? `sdk_${crypto.randomUUID()}`;
    }
    if (isNode()) headers["User-Agent"] = this.options.userAgent;
    const url = this.url(path, options.query);

    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await this.fetchOnce(url, method, headers, body, options);
      } catch (error) {
        if (options.signal?.aborted) throw error;
        if (attempt >= this.options.maxRetries) {
          throw new APIConnectionError(`${method} ${url}: ${describe(error)}`, { cause: error });
        }
        await sleep(backoff(attempt));
        continue;
      }
      if (response.ok) return response;
      if (attempt < this.options.maxRetries && retryable(response.status)) {
        const delay = retryAfter(response.headers) ?? backoff(attempt);
        await response.body?.cancel().catch(() => undefined);
        await sleep(Math.min(delay, MAX_RETRY_DELAY_MS));
        continue;
      }
      throw await APIError.fromResponse(response);
    }
  }

  private async fetchOnce(
    url: string,
    method: string,
    headers: Record<string, string>,
    body: BodyInit | undefined,
    options: RequestOptions,
  ): Promise<Response> {
    const timeout = AbortSignal.timeout(options.timeout ?? this.options.timeout);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    return this.options.fetch(url, { method, headers, body, signal });
  }
}

function retryable(status: number): boolean {
  return status === 429 || status === 408 || status >= 500;
}

/** `Retry-After` in milliseconds: seconds, or an HTTP date. */
function retryAfter(headers: Headers): number | undefined {
  const value = headers.get("retry-after");
  if (value === null) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** 0.5 s, 1 s, 2 s, … up to 8 s, each with up to a quarter more at random. */
function backoff(attempt: number): number {
  const base = Math.min(INITIAL_RETRY_DELAY_MS * 2 ** attempt, 8_000);
  return base * (1 + Math.random() * 0.25);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    return cause instanceof Error ? `${error.message} (${cause.message})` : error.message;
  }
  return String(error);
}

function isNode(): boolean {
  const process = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof process?.versions?.node === "string";
}
