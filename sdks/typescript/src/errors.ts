/** Everything this SDK throws is a `CoExAIError` (or a subclass). */
export class CoExAIError extends Error {
  override name = "CoExAIError";
}

/**
 * The service answered with an error: `{"error": {code, message, details, request_id}}`.
 * `status` is the HTTP status; `headers` the answer's headers (e.g. `retry-after`).
 */
export class APIError extends CoExAIError {
  override name = "APIError";
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown>;
  readonly requestId: string | null;
  readonly headers: Headers;

  constructor(
    status: number,
    code: string,
    message: string,
    details: Record<string, unknown>,
    requestId: string | null,
    headers: Headers,
  ) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
    this.requestId = requestId;
    this.headers = headers;
  }

  static async fromResponse(response: Response): Promise<APIError> {
    const text = await response.text().catch(() => "");
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    const error = isObject(body) && isObject(body.error) ? body.error : undefined;
    const code = typeof error?.code === "string" ? error.code : `HTTP_${response.status}`;
    const message =
      typeof error?.message === "string" ? error.message : text.slice(0, 500) || `HTTP ${response.status}`;
    const details = isObject(error?.details) ? error.details : {};
    const requestId =
      (typeof error?.request_id === "string" ? error.request_id : null) ?? response.headers.get("x-request-id");
    const Kind = ERROR_CLASSES[response.status] ?? (response.status >= 500 ? InternalServerError : APIError);
    return new Kind(response.status, code, message, details, requestId, response.headers);
  }
}

export class BadRequestError extends APIError {
  override name = "BadRequestError";
}
export class AuthenticationError extends APIError {
  override name = "AuthenticationError";
}
export class PaymentRequiredError extends APIError {
  override name = "PaymentRequiredError";
}
export class PermissionDeniedError extends APIError {
  override name = "PermissionDeniedError";
}
export class NotFoundError extends APIError {
  override name = "NotFoundError";
}
export class ConflictError extends APIError {
  override name = "ConflictError";
}
export class PayloadTooLargeError extends APIError {
  override name = "PayloadTooLargeError";
}
export class UnsupportedMediaTypeError extends APIError {
  override name = "UnsupportedMediaTypeError";
}
export class ValidationError extends APIError {
  override name = "ValidationError";
}
/** 429: `code` is `RATE_LIMIT_EXCEEDED` or `QUOTA_EXCEEDED`; thrown once the retries are used up. */
export class RateLimitError extends APIError {
  override name = "RateLimitError";
}
export class InternalServerError extends APIError {
  override name = "InternalServerError";
}

const ERROR_CLASSES: Record<number, typeof APIError> = {
  400: BadRequestError,
  401: AuthenticationError,
  402: PaymentRequiredError,
  403: PermissionDeniedError,
  404: NotFoundError,
  409: ConflictError,
  413: PayloadTooLargeError,
  415: UnsupportedMediaTypeError,
  422: ValidationError,
  429: RateLimitError,
};

/** No answer from the service (connection refused or reset, DNS), after the retries. */
export class APIConnectionError extends CoExAIError {
  override name = "APIConnectionError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** `jobs.waitForCompletion` ran out of time; `job` is the job as last seen. */
export class WaitTimeoutError extends CoExAIError {
  override name = "WaitTimeoutError";
  readonly job: unknown;
  constructor(message: string, job: unknown) {
    super(message);
    this.job = job;
  }
}

/** A webhook request whose signature did not verify (wrong secret, altered body, too old). */
export class WebhookVerificationError extends CoExAIError {
  override name = "WebhookVerificationError";
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
