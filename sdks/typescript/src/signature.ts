/**
 * Webhook signatures, checked with Web Crypto (`crypto.subtle`) so that the same code runs in Node 20+,
 * browsers, Deno and edge runtimes. Two schemes sign every delivery (src/backplane/webhooks/signing.py):
 *
 * - `X-CoExAI-Signature: sha256=<hex HMAC-SHA256 of the raw body>`, keyed with the secret as text (the
 *   guide's); during a rotation's overlap `X-CoExAI-Signature-Previous` carries the old secret's;
 * - Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64> [v1,…]`, an
 *   HMAC-SHA256 of `id.timestamp.body` keyed with the base64-decoded secret after `whsec_`, which also
 *   dates the request so that a replayed one is refused.
 *
 * Hand-written rather than a dependency: the SDK has none at run time, and the `standardwebhooks`
 * package needs Node's Buffer. HMACs are compared by `crypto.subtle.verify`, not by string equality.
 */
import { WebhookVerificationError } from "./errors.js";

export type HeaderBag = Headers | Record<string, string | string[] | undefined>;

export interface VerifyOptions {
  /** Seconds a Standard Webhooks timestamp may be off from now (default 300). */
  tolerance?: number;
  /**
   * `auto` (default): the Standard Webhooks headers when the request has them, else
   * `X-CoExAI-Signature`. `standard`: require the Standard Webhooks headers (refuses a request whose
   * dating headers were stripped). `coexai`: only `X-CoExAI-Signature` (no replay protection).
   */
  scheme?: "auto" | "standard" | "coexai";
}

const encoder = new TextEncoder();

export function header(headers: HeaderBag, name: string): string | undefined {
  if (typeof (headers as Headers).get === "function") return (headers as Headers).get(name) ?? undefined;
  const bag = headers as Record<string, string | string[] | undefined>;
  const lower = name.toLowerCase();
  const key = Object.keys(bag).find((k) => k.toLowerCase() === lower);
  const value = key === undefined ? undefined : bag[key];
  return Array.isArray(value) ? value[0] : value;
}

/** Resolves when `payload` (the raw body) is signed with one of `secrets`; throws otherwise. */
export async function verifySignature(
  payload: string | Uint8Array,
  headers: HeaderBag,
  secrets: string | string[],
  options: VerifyOptions = {},
): Promise<void> {
  const keys = (Array.isArray(secrets) ? secrets : [secrets]).filter((s) => s);
  if (keys.length === 0) throw new WebhookVerificationError("no webhook secret to verify with");
  const body = typeof payload === "string" ? encoder.encode(payload) : payload;
  const scheme = options.scheme ?? "auto";
  const standard = header(headers, "webhook-signature");
  if (scheme === "standard" || (scheme === "auto" && standard !== undefined)) {
    return verifyStandard(body, headers, keys, options.tolerance ?? 300);
  }
  const signatures = [header(headers, "x-coexai-signature"), header(headers, "x-coexai-signature-previous")];
  for (const signature of signatures) {
    const digest = signature?.trim().replace(/^sha256=/, "");
    if (!digest || !/^[0-9a-fA-F]{64}$/.test(digest)) continue;
    for (const secret of keys) {
      if (await hmacMatches(encoder.encode(secret), body, hexBytes(digest))) return;
    }
  }
  throw new WebhookVerificationError(
    signatures.some((s) => s !== undefined) ? "X-CoExAI-Signature does not match" : "no webhook signature header",
  );
}

async function verifyStandard(body: Uint8Array, headers: HeaderBag, secrets: string[], tolerance: number) {
  const id = header(headers, "webhook-id");
  const timestamp = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  if (!id || !timestamp || !signatures) throw new WebhookVerificationError("missing Standard Webhooks headers");
  const seconds = Number(timestamp);
  if (!/^\d+$/.test(timestamp) || Math.abs(Date.now() / 1000 - seconds) > tolerance) {
    throw new WebhookVerificationError("webhook-timestamp is too old or too new");
  }
  const signed = concat(encoder.encode(`${id}.${timestamp}.`), body);
  const given = signatures
    .split(" ")
    .filter((part) => part.startsWith("v1,"))
    .map((part) => base64Bytes(part.slice(3)))
    .filter((bytes): bytes is Uint8Array => bytes !== undefined);
  for (const secret of secrets) {
    const key = base64Bytes(secret.startsWith("whsec_") ? secret.slice("whsec_".length) : secret);
    if (key === undefined) continue;
    for (const signature of given) {
      if (await hmacMatches(key, signed, signature)) return;
    }
  }
  throw new WebhookVerificationError("webhook-signature does not match");
}

async function hmacMatches(key: Uint8Array, data: Uint8Array, signature: Uint8Array): Promise<boolean> {
  const cryptoKey = await crypto.subtle.importKey("raw", key as BufferSource, { name: "HMAC", hash: "SHA-256" }, false, [
    "verify",
  ]);
  return crypto.subtle.verify("HMAC", cryptoKey, signature as BufferSource, data as BufferSource);
}

function hexBytes(hex: string): Uint8Array {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}

function base64Bytes(text: string): Uint8Array | undefined {
  try {
    const binary = atob(text);
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
