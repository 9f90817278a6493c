/**
 * camelCase in the SDK, the API's snake_case on the wire. Only an object's own fields are renamed:
 * the values (an agent's input, a job's output, a file's metadata) are passed through untouched.
 */
import type { FileInput, Uploadable } from "./types.js";

export function camelize<T>(value: unknown): T {
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    out[key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())] = item;
  }
  return out as T;
}

export function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** The object with its fields renamed to snake_case and the undefined ones left out. */
export function snakeize(value: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    if (item !== undefined) out[snakeCase(key)] = item;
  }
  return out;
}

export function toIso(value: string | Date | undefined): string | undefined {
  return value instanceof Date ? value.toISOString() : value;
}

export interface NamedBlob {
  blob: Blob;
  filename: string;
}

/** A Blob for any uploadable value, with a file name (a File's own, the given one, or `file`). */
export function asBlob(input: FileInput, fallbackName = "file", contentType?: string): NamedBlob {
  const given = isWrapped(input) ? input : { data: input };
  const data: Uploadable = given.data;
  const type = given.contentType ?? contentType;
  let blob: Blob;
  if (data instanceof Blob) {
    blob = type && data.type !== type ? new Blob([data], { type }) : data;
  } else {
    blob = new Blob([data as BlobPart], type ? { type } : {});
  }
  const ownName = typeof File !== "undefined" && data instanceof File ? data.name : undefined;
  return { blob, filename: given.filename ?? ownName ?? fallbackName };
}

function isWrapped(input: FileInput): input is { data: Uploadable; filename?: string; contentType?: string } {
  return typeof input === "object" && input !== null && "data" in input && !(input instanceof Blob);
}

/**
 * A multipart body encoded once, so that every retry sends the same bytes under the same boundary (the
 * service hashes a multipart request by its content type and length for `Idempotency-Key`).
 */
export async function encodeForm(form: FormData): Promise<{ body: Blob; contentType: string }> {
  const encoded = new Response(form);
  const contentType = encoded.headers.get("content-type") ?? "multipart/form-data";
  return { body: await encoded.blob(), contentType };
}
