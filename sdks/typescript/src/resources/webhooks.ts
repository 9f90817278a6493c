import { CoExAIError, WebhookVerificationError, isObject } from "../errors.js";
import type { HttpClient } from "../http.js";
import { type HeaderBag, type VerifyOptions, header, verifySignature } from "../signature.js";
import type {
  JsonObject,
  Webhook,
  WebhookCreateParams,
  WebhookEvent,
  WebhookUpdateParams,
  WebhookWithSecret,
} from "../types.js";
import { camelize, snakeize } from "../wire.js";
import { paginate, type Page } from "./pagination.js";

/** What `handler` needs of a request: Express's, or Node's own `IncomingMessage`. */
export interface IncomingRequest extends AsyncIterable<unknown> {
  headers: Record<string, string | string[] | undefined>;
  /** Set by a body parser that ran first: `express.raw()` (bytes), `express.text()`, or `express.json()`. */
  body?: unknown;
  rawBody?: unknown;
}

/** What `handler` needs of a response: Express's, or Node's own `ServerResponse`. */
export interface OutgoingResponse {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body?: string): unknown;
  headersSent?: boolean;
}

export type NextFunction = (error?: unknown) => void;

export interface HandlerOptions extends VerifyOptions {
  /** The secret(s) to verify with; default: the client's `webhookSecret`. Two during a rotation. */
  secret?: string | string[];
}

export class Webhooks {
  constructor(
    private readonly http: HttpClient,
    private readonly secret: string | undefined,
  ) {}

  /** Subscribe a URL to event types. The answer carries the signing `secret`, shown this once. */
  async create(params: WebhookCreateParams): Promise<WebhookWithSecret> {
    return camelize<WebhookWithSecret>(await this.http.json<JsonObject>("POST", "/webhooks", { json: snakeize(params) }));
  }

  list(params: { limit?: number } = {}): AsyncIterable<Webhook> & { firstPage(): Promise<Page<Webhook>> } {
    return paginate(this.http, "/webhooks", { ...params }, (webhook) => camelize<Webhook>(webhook));
  }

  async get(webhookId: string): Promise<Webhook> {
    return camelize<Webhook>(await this.http.json<JsonObject>("GET", `/webhooks/${encodeURIComponent(webhookId)}`));
  }

  async update(webhookId: string, params: WebhookUpdateParams): Promise<Webhook> {
    return camelize<Webhook>(
      await this.http.json<JsonObject>("PATCH", `/webhooks/${encodeURIComponent(webhookId)}`, {
        json: snakeize(params),
      }),
    );
  }

  async delete(webhookId: string): Promise<void> {
    const response = await this.http.request("DELETE", `/webhooks/${encodeURIComponent(webhookId)}`);
    await response.body?.cancel().catch(() => undefined);
  }

  /** A new secret (shown this once); the old one keeps signing for 24 hours. */
  async rotateSecret(webhookId: string): Promise<JsonObject> {
    return camelize<JsonObject>(
      await this.http.json<JsonObject>("POST", `/webhooks/${encodeURIComponent(webhookId)}/rotate-secret`),
    );
  }

  /** Send a `webhook.test` ping now; answers with the attempt. */
  async test(webhookId: string): Promise<JsonObject> {
    return camelize<JsonObject>(await this.http.json<JsonObject>("POST", `/webhooks/${encodeURIComponent(webhookId)}/test`));
  }

  /** Resolves when the raw body is signed with the secret (either scheme); throws `WebhookVerificationError`. */
  async verify(payload: string | Uint8Array, headers: HeaderBag, secret?: string | string[], options?: VerifyOptions) {
    await verifySignature(payload, headers, this.secretOr(secret), options);
  }

  /** The verified delivery, parsed: `event.type`, `event.data`. */
  async constructEvent(
    payload: string | Uint8Array,
    headers: HeaderBag,
    secret?: string | string[],
    options?: VerifyOptions,
  ): Promise<WebhookEvent> {
    await verifySignature(payload, headers, this.secretOr(secret), options);
    const text = typeof payload === "string" ? payload : new TextDecoder().decode(payload);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new WebhookVerificationError("the webhook body is not JSON");
    }
    if (!isObject(body)) throw new WebhookVerificationError("the webhook body is not a JSON object");
    const type = typeof body.type === "string" ? body.type : typeof body.event === "string" ? body.event : "";
    const id = header(headers, "webhook-id");
    return { ...(body as object), type, event: type, ...(id ? { id } : {}) } as WebhookEvent;
  }

  /**
   * Express-compatible middleware (also a plain `http.createServer` listener): verifies the request's
   * raw body, then calls `fn(event)` and answers 200 once it resolves. A bad signature answers 401 and
   * `fn` is not called. When `fn` throws, the error goes to Express's `next` (or a 500 is answered), so
   * the platform retries the delivery.
   *
   * Mount it before any JSON body parser, or with `express.raw({ type: 'application/json' })`. After
   * `express.json()` the body is re-serialized with `JSON.stringify`, which the platform's bodies
   * survive byte for byte (they are written in JavaScript's form for this), but the raw body is safer.
   */
  handler(
    fn: (event: WebhookEvent) => unknown,
    options: HandlerOptions = {},
  ): (req: IncomingRequest, res: OutgoingResponse, next?: NextFunction) => Promise<void> {
    const secret = this.secretOr(options.secret);
    return async (req, res, next) => {
      let event: WebhookEvent;
      try {
        const body = await rawBody(req);
        event = await this.constructEvent(body, req.headers, secret, options);
      } catch (error) {
        if (!(error instanceof WebhookVerificationError)) {
          if (next) return next(error);
          throw error;
        }
        return answer(res, 401, { error: { code: "INVALID_SIGNATURE", message: error.message } });
      }
      try {
        await fn(event);
      } catch (error) {
        if (next) return next(error);
        return answer(res, 500, { error: { code: "HANDLER_ERROR", message: "the webhook handler failed" } });
      }
      if (!res.headersSent) answer(res, 200, { received: true });
    };
  }

  private secretOr(secret: string | string[] | undefined): string | string[] {
    const chosen = secret ?? this.secret;
    if (chosen === undefined || chosen.length === 0) {
      throw new CoExAIError("no webhook secret: pass webhookSecret to new CoExAI() or a secret here");
    }
    return chosen;
  }
}

/** The request's body as received, whatever ran before: a raw or text parser, a JSON parser, or none. */
async function rawBody(req: IncomingRequest): Promise<string | Uint8Array> {
  for (const candidate of [req.rawBody, req.body]) {
    if (candidate instanceof Uint8Array || typeof candidate === "string") return candidate;
  }
  if (isObject(req.body) && Object.keys(req.body).length > 0) {
    return JSON.stringify(req.body); // express.json() ran first: see `handler`
  }
  const chunks: Uint8Array[] = [];
  for await (const chunk of req) {
    chunks.push(typeof chunk === "string" ? new TextEncoder().encode(chunk) : (chunk as Uint8Array));
  }
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

function answer(res: OutgoingResponse, status: number, body: unknown): void {
  res.statusCode = status;
  res.setHeader("Content-Type", "application/json");
  res.end(JSON.stringify(body));
}
