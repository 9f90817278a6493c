/**
 * The dashboard's only way to the API. The access token lives in this module's memory and nowhere
 * else; the refresh token is the httpOnly `bp_refresh` cookie, scoped by the server to
 * /v1/auth/session, which this module exchanges for a new access token (with the `bp_csrf` cookie's
 * value in `X-CSRF-Token`) on load, shortly before the token expires, and after any 401.
 *
 * The SDK (`@coexai/sdk`) does every call it covers (jobs, files, agents, webhooks, events); it is given
 * `authFetch` as its fetch, which puts the current token and organization on each request. The calls
 * the SDK does not cover (sessions, API keys, organizations, licenses, billing, staff) go through
 * `request` below, over the same `authFetch`.
 *
 * The live/test toggle is the mode every call acts in: the SDK client is made for it (`mode`, sent as
 * `X-Backplane-Mode`), and `authFetch` puts the same header on the calls the SDK does not make. In test
 * mode the API treats the signed-in user as it treats a test-mode key.
 */
import { APIError, CoExAI, MODE_HEADER, type Mode } from "@coexai/sdk";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string = `HTTP_${status}`,
    readonly fields: Record<string, string[]> = {},
  ) {
    super(message);
  }
}

let accessToken: string | null = null;
let organizationId: string | null = localStorage.getItem("bp_org");
let mode: Mode = localStorage.getItem("bp_mode") === "test" ? "test" : "live";
let refreshTimer: number | undefined;
let refreshing: Promise<boolean> | null = null;
const signedOutListeners = new Set<() => void>();

export function onSignedOut(listener: () => void): () => void {
  signedOutListeners.add(listener);
  return () => signedOutListeners.delete(listener);
}

export function currentOrganization(): string | null {
  return organizationId;
}

export function setOrganization(id: string | null): void {
  organizationId = id;
  if (id) localStorage.setItem("bp_org", id);
  else localStorage.removeItem("bp_org");
}

export function currentMode(): Mode {
  return mode;
}

/** The mode every call acts in from now on (the SDK client is remade for it). */
export function setMode(next: Mode): void {
  mode = next;
  localStorage.setItem("bp_mode", next);
  sdk = baseSdk.withOptions({ mode });
}

export function accessTokenForDownload(): string | null {
  return accessToken;
}

function csrfToken(): string {
  const cookie = document.cookie.split("; ").find((part) => part.startsWith("bp_csrf="));
  return cookie ? decodeURIComponent(cookie.slice("bp_csrf=".length)) : "";
}

interface TokenAnswer {
  access_token: string;
  expires_in: number;
  user?: Record<string, unknown>;
}

function keep(answer: TokenAnswer): void {
  accessToken = answer.access_token;
  window.clearTimeout(refreshTimer);
  // Refresh a minute before expiry (or at 80% of a short lifetime), so a page left open keeps working.
  const lead = Math.max(answer.expires_in * 0.8, answer.expires_in - 60);
  refreshTimer = window.setTimeout(() => void refreshSession(), lead * 1000);
}

function forget(): void {
  accessToken = null;
  window.clearTimeout(refreshTimer);
}

/** A new access token from the refresh cookie; false when there is no (valid) session. */
export function refreshSession(): Promise<boolean> {
  refreshing ??= (async () => {
    try {
      const response = await fetch("/v1/auth/session/refresh", {
        method: "POST",
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRF-Token": csrfToken() },
      });
      if (!response.ok) {
        forget();
        return false;
      }
      keep((await response.json()) as TokenAnswer);
      return true;
    } catch {
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

export async function signIn(email: string, password: string): Promise<void> {
  const response = await fetch("/v1/auth/session", {
    method: "POST",
    credentials: "same-origin",
    headers: { Accept: "application/json", "Content-Type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  if (!response.ok) throw await errorFrom(response);
  keep((await response.json()) as TokenAnswer);
}

export async function signOut(): Promise<void> {
  try {
    await fetch("/v1/auth/session", {
      method: "DELETE",
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRF-Token": csrfToken() },
    });
  } finally {
    forget();
    signedOutListeners.forEach((listener) => listener());
  }
}

/** fetch with the session's bearer token and organization; one refresh and retry after a 401. */
export const authFetch: typeof fetch = (input, init = {}) => sessionFetch(input, init, true);

async function sessionFetch(
  input: RequestInfo | URL,
  init: RequestInit,
  inOrganization: boolean,
  inMode: Mode = mode,
): Promise<Response> {
  const send = () => {
    const headers = new Headers(init.headers);
    if (accessToken) headers.set("Authorization", `Bearer ${accessToken}`);
    else headers.delete("Authorization");
    if (organizationId && inOrganization) headers.set("X-Organization-ID", organizationId);
    if (!headers.has(MODE_HEADER)) headers.set(MODE_HEADER, inMode); // the SDK's calls carry their own
    return fetch(input, { ...init, headers, credentials: "same-origin" });
  };
  let response = await send();
  if (response.status === 401 && accessToken !== null) {
    await response.body?.cancel().catch(() => undefined);
    if (await refreshSession()) response = await send();
    else signedOutListeners.forEach((listener) => listener());
  }
  return response;
}

const baseSdk = new CoExAI({
  apiKey: "dashboard-session", // replaced on every request by authFetch with the session's token
  baseUrl: `${window.location.origin}/v1`,
  fetch: authFetch,
  maxRetries: 1,
});

/** The SDK client for the current mode (a live binding: `setMode` replaces it). */
export let sdk = baseSdk.withOptions({ mode });

/** The error a failed answer carries, from either surface's error shape (or the SDK's error). */
export async function errorFrom(response: Response): Promise<ApiError> {
  let body: unknown;
  try {
    body = await response.json();
  } catch {
    body = undefined;
  }
  return errorFromBody(response.status, body);
}

function errorFromBody(status: number, body: unknown): ApiError {
  if (body && typeof body === "object") {
    const value = body as Record<string, unknown>;
    const error = value.error;
    if (error && typeof error === "object") {
      const platform = error as { code?: string; message?: string; details?: { errors?: unknown } };
      return new ApiError(status, platform.message ?? `HTTP ${status}`, platform.code);
    }
    if (value.errors && typeof value.errors === "object") {
      const fields = value.errors as Record<string, string[]>;
      const first = Object.entries(fields)[0];
      return new ApiError(status, first ? `${first[0]}: ${first[1]}` : "Invalid input", "VALIDATION_ERROR", fields);
    }
    if (typeof error === "string") {
      const detail = typeof value.detail === "string" ? value.detail : "";
      return new ApiError(status, detail ? `${error}: ${detail}` : error);
    }
    if (typeof value.detail === "string") return new ApiError(status, value.detail);
  }
  return new ApiError(status, `The server answered ${status}.`);
}

export function describeError(error: unknown): string {
  if (error instanceof ApiError || error instanceof APIError) return error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}

type Query = Record<string, string | number | boolean | null | undefined>;

/** A JSON call to a route the SDK does not cover. */
export async function request<T>(
  method: string,
  path: string,
  options: { json?: unknown; query?: Query; signal?: AbortSignal; organization?: boolean; mode?: Mode } = {},
): Promise<T> {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(options.query ?? {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, String(value));
  }
  const headers: Record<string, string> = { Accept: "application/json" };
  if (options.json !== undefined) headers["Content-Type"] = "application/json";
  if (method === "POST") headers["Idempotency-Key"] = `dash_${crypto.randomUUID()}`;
  const init = {
    method,
    headers,
    body: options.json === undefined ? undefined : JSON.stringify(options.json),
    signal: options.signal,
  };
  // `organization: false`: a call about the user, not an organization (another user's remembered
  // organization, from this browser's last session, would make it a 404).
  // `mode`: a call that acts in one mode whatever the toggle says (the staff console acts live).
  const response = await sessionFetch(url, init, options.organization !== false, options.mode ?? mode);
  if (!response.ok) throw await errorFrom(response);
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

/** Save an authenticated download (a file's bytes, a license file, a job's output) to the user's disk. */
export async function download(path: string, filename: string): Promise<void> {
  const response = await authFetch(new URL(path, window.location.origin), { headers: { Accept: "*/*" } });
  if (!response.ok) throw await errorFrom(response);
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * POST a multipart form with upload progress. fetch has no upload progress in browsers, and the SDK's
 * `files.upload` is fetch-based, so the Files page's upload uses XMLHttpRequest with the same token.
 */
export function uploadWithProgress<T>(path: string, form: FormData, onProgress: (fraction: number) => void): Promise<T> {
  const attempt = () =>
    new Promise<{ status: number; body: unknown }>((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", path);
      if (accessToken) xhr.setRequestHeader("Authorization", `Bearer ${accessToken}`);
      if (organizationId) xhr.setRequestHeader("X-Organization-ID", organizationId);
      xhr.setRequestHeader(MODE_HEADER, mode);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("Idempotency-Key", `dash_${crypto.randomUUID()}`);
      xhr.upload.onprogress = (event) => {
        if (event.lengthComputable) onProgress(event.loaded / event.total);
      };
      xhr.onload = () => {
        let body: unknown;
        try {
          body = JSON.parse(xhr.responseText);
        } catch {
          body = undefined;
        }
        resolve({ status: xhr.status, body });
      };
      xhr.onerror = () => reject(new ApiError(0, "The upload failed: the connection was lost."));
      xhr.send(form);
    });
  return (async () => {
    let answer = await attempt();
    if (answer.status === 401 && (await refreshSession())) answer = await attempt();
    if (answer.status < 200 || answer.status >= 300) throw errorFromBody(answer.status, answer.body);
    onProgress(1);
    return answer.body as T;
  })();
}
