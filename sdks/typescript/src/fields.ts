/**
 * The fields this SDK models, by the name of their schema in the service's OpenAPI document, with the
 * wire type of each: a JSON type (`string`, `integer`, `number`, `boolean`, `object`, `array`), a schema
 * name for a reference, `|null` when it may be null. The types in `types.ts` are checked against these
 * lists when the SDK compiles (see the end of `types.ts`), and the test `openapi-drift.test.ts` checks
 * these lists against `/openapi.json` of a running service, so a server change to a modelled field
 * fails CI until the SDK changes too.
 */
export const MODELLED_SCHEMAS = {
  JobCreate: {
    agent_id: "string",
    input_data: "object",
    config: "object",
    file_ids: "array",
    priority: "integer",
    webhook: "string|null",
    webhook_events_filter: "array|null",
  },
  JobRead: {
    id: "string",
    agent_id: "string",
    status: "JobStatus",
    priority: "integer",
    input_data: "object",
    config: "object",
    file_ids: "array",
    output_data: "object|null",
    error: "JobError|null",
    attempts: "integer",
    livemode: "boolean",
    created_at: "string",
    queued_at: "string|null",
    started_at: "string|null",
    finished_at: "string|null",
    status_reason: "string|null",
    webhook: "string|null",
    webhook_events_filter: "array|null",
  },
  JobError: {
    code: "string",
    message: "string",
    attempt: "integer|null",
  },
  JobOutput: {
    job_id: "string",
    agent_id: "string",
    status: "JobStatus",
    content: "object",
    finished_at: "string|null",
  },
  FileRead: {
    id: "string",
    filename: "string",
    content_type: "string",
    size_bytes: "integer",
    sha256: "string|null",
    status: "string",
    metadata: "object",
    livemode: "boolean",
    created_at: "string",
  },
  UploadUrlRequest: {
    filename: "string",
    content_type: "string",
    size_bytes: "integer",
  },
  UploadUrlResponse: {
    upload_url: "string",
    file_id: "string",
    expires_at: "string",
  },
  WebhookCreate: {
    url: "string",
    events: "array",
    description: "string|null",
    enabled: "boolean",
    ordering: "string",
  },
  WebhookRead: {
    id: "string",
    url: "string",
    events: "array",
    description: "string|null",
    enabled: "boolean",
    disabled_reason: "string|null",
    disabled_at: "string|null",
    ordering: "string",
    livemode: "boolean",
    circuit_state: "string",
    consecutive_failures: "integer",
    circuit_retry_at: "string|null",
    created_at: "string",
    updated_at: "string",
  },
  EventRead: {
    id: "string",
    type: "string",
    data: "object",
    livemode: "boolean",
    created_at: "string",
  },
  AgentSummary: {
    id: "string",
    name: "string",
    description: "string",
    accepted_file_types: "array",
    max_file_bytes: "integer",
    output_formats: "array",
    status: "string",
    maintenance_reason: "string|null",
  },
  PlatformErrorBody: {
    code: "string",
    message: "string",
    details: "object",
    request_id: "string|null",
  },
} as const;

/** The values of the JobStatus enum, as the service sends them. */
export const JOB_STATUSES = [
  "pending",
  "queued",
  "processing",
  "completed",
  "failed",
  "dead_letter",
  "cancelled",
] as const;

/** The states a job does not leave by itself. */
export const FINAL_JOB_STATUSES: readonly string[] = ["completed", "failed", "dead_letter", "cancelled"];
