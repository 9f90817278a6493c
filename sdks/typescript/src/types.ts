/**
 * Request and response types. Fields are camelCase here and the API's snake_case names on the wire;
 * the free-form objects a job or file carries (`inputData`, `config`, `outputData`, `metadata`, an
 * event's `data`) are passed through exactly as given or received.
 */
import type { JOB_STATUSES, MODELLED_SCHEMAS } from "./fields.js";

export type JsonObject = { [key: string]: unknown };

export type JobStatus = (typeof JOB_STATUSES)[number];

export interface JobError {
  code: string;
  message: string;
  attempt: number | null;
}

export interface Job {
  id: string;
  agentId: string;
  status: JobStatus;
  priority: number;
  inputData: JsonObject;
  config: JsonObject;
  fileIds: string[];
  outputData: JsonObject | null;
  error: JobError | null;
  attempts: number;
  livemode: boolean;
  createdAt: string;
  queuedAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  statusReason?: string | null;
  /** The job's own webhook URL, if it named one. */
  webhook: string | null;
  /** The notifications its `webhook` gets (null without a webhook). */
  webhookEventsFilter: JobWebhookNotification[] | null;
}

/** The notifications a job's own `webhook` can get. */
export type JobWebhookNotification = "start" | "progress" | "completed";

/** How a webhook endpoint's deliveries are ordered (`per_resource`: one resource's events in order). */
export type WebhookOrdering = "none" | "per_resource";
export type WebhookCircuitState = "closed" | "open" | "half_open";

export interface JobOutput {
  jobId: string;
  agentId: string;
  status: JobStatus;
  /** The agent's output (the job's `outputData`). */
  content: JsonObject;
  finishedAt: string | null;
}

/** Something to upload: a Blob or File (browsers, Node 20), bytes, or text. */
export type Uploadable = Blob | ArrayBuffer | ArrayBufferView | string;

/** A file given to `jobs.create` or `files.upload`: the data, or the data with its name and type. */
export type FileInput = Uploadable | { data: Uploadable; filename?: string; contentType?: string };

export interface JobCreateParams {
  /** `maya`, `jordan`, `sam`, `taylor` (see `agents.list()`). */
  agentId: string;
  /** The agent's input (the guide's name); sent as `input_data`, passed through as given. */
  input?: JsonObject;
  /** The same as `input` (the API's name); give one of the two. */
  inputData?: JsonObject;
  config?: JsonObject;
  /** Ready files of the organization (`file_…`). */
  fileIds?: string[];
  /** Files uploaded with the job in one multipart request (they become files of the organization). */
  files?: FileInput[];
  /** -100 to 100; higher runs first among queued jobs. */
  priority?: number;
  /**
   * A URL of yours that this job's notifications are POSTed to (besides the organization's webhooks):
   * https, publicly reachable; signed with the organization's job-webhook secret. Sent as `webhook`.
   */
  webhook?: string | null;
  /** Which notifications `webhook` gets (default, with a `webhook`: all three); sent as `webhook_events_filter`. */
  webhookEventsFilter?: JobWebhookNotification[] | null;
}

export interface JobListParams {
  status?: JobStatus;
  agentId?: string;
  createdAfter?: string | Date;
  createdBefore?: string | Date;
  /** Items per page (1-100); the iterator fetches further pages by itself. */
  limit?: number;
}

export interface WaitOptions {
  /** Milliseconds before giving up with a `WaitTimeoutError` (default 600000, ten minutes). */
  timeout?: number;
  /**
   * Milliseconds between two looks at the job when the service answers before the job is final and
   * before the long poll's time is up (default 5000). The SDK long-polls `GET /v1/jobs/{id}?wait=`,
   * so a finished job is seen at once, not at the next interval.
   */
  pollInterval?: number;
}

export interface FileRecord {
  id: string;
  filename: string;
  contentType: string;
  sizeBytes: number;
  sha256: string | null;
  status: "pending" | "ready";
  metadata: JsonObject;
  livemode: boolean;
  createdAt: string;
}

export interface UploadUrlParams {
  filename: string;
  contentType: string;
  sizeBytes: number;
}

export interface UploadUrl {
  uploadUrl: string;
  fileId: string;
  expiresAt: string;
}

export interface FileUploadOptions {
  filename?: string;
  contentType?: string;
  metadata?: JsonObject;
  /** Also apply this agent's file types and size limit. */
  agentId?: string;
}

export type WebhookEventType =
  | "job.completed"
  | "job.failed"
  | "subscription.created"
  | "subscription.updated"
  | "subscription.cancelled"
  | "payment.succeeded"
  | "payment.failed"
  | "*";

export interface WebhookCreateParams {
  url: string;
  events: WebhookEventType[];
  description?: string | null;
  enabled?: boolean;
  /** `none` (the default) or `per_resource`. */
  ordering?: WebhookOrdering;
}

export interface WebhookUpdateParams {
  url?: string;
  events?: WebhookEventType[];
  description?: string | null;
  enabled?: boolean;
  ordering?: WebhookOrdering;
}

export interface Webhook {
  id: string;
  url: string;
  events: string[];
  description: string | null;
  enabled: boolean;
  disabledReason: string | null;
  disabledAt: string | null;
  ordering: WebhookOrdering;
  livemode: boolean;
  /** `closed`; `open` after failed attempts in a row (deliveries wait until `circuitRetryAt`); `half_open`: a probe goes. */
  circuitState: WebhookCircuitState;
  consecutiveFailures: number;
  circuitRetryAt: string | null;
  createdAt: string;
  updatedAt: string;
}

/** The answer to `webhooks.create`: the endpoint and its signing secret, shown this once. */
export interface WebhookWithSecret extends Webhook {
  secret: string;
}

export interface Event {
  id: string;
  type: string;
  data: JsonObject;
  livemode: boolean;
  createdAt: string;
}

export interface Agent {
  id: string;
  name: string;
  description: string;
  acceptedFileTypes: string[];
  maxFileBytes: number;
  /** What `jobs.getOutput` can render this agent's output as (`json` always). */
  outputFormats: string[];
  status: "available" | "maintenance";
  maintenanceReason: string | null;
}

/**
 * A webhook delivery as received: `{event, type, timestamp, webhook_id, data}`. `type` (and the guide's
 * `event`) is the event type; `data` is the event's payload as the service sent it (for job events, the
 * job with the API's field names: `data.id`, `data.status`, `data.output_url`…).
 */
export interface WebhookEvent<T = JsonObject> {
  type: string;
  event: string;
  timestamp: string;
  webhook_id: string;
  data: T;
  /** The Standard Webhooks `webhook-id` header: the event id, the same on every retry. */
  id?: string;
}

// --- compile-time agreement between these types and fields.ts ---------------------------------------

type CamelCase<S extends string> = S extends `${infer Head}_${infer Tail}` ? `${Head}${Capitalize<CamelCase<Tail>>}` : S;
type WireNames<Schema extends keyof typeof MODELLED_SCHEMAS> = CamelCase<keyof (typeof MODELLED_SCHEMAS)[Schema] & string>;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assert<T extends true> = T;

// Each line fails to compile when a type and its field list differ (a field added, renamed or removed
// on one side only).
export type _FieldsAgree = [
  Assert<Same<keyof Job, WireNames<"JobRead">>>,
  Assert<Same<keyof JobError, WireNames<"JobError">>>,
  Assert<Same<keyof JobOutput, WireNames<"JobOutput">>>,
  Assert<Same<keyof FileRecord, WireNames<"FileRead">>>,
  Assert<Same<keyof UploadUrlParams, WireNames<"UploadUrlRequest">>>,
  Assert<Same<keyof UploadUrl, WireNames<"UploadUrlResponse">>>,
  Assert<Same<keyof WebhookCreateParams, WireNames<"WebhookCreate">>>,
  Assert<Same<keyof Webhook, WireNames<"WebhookRead">>>,
  Assert<Same<keyof Event, WireNames<"EventRead">>>,
  Assert<Same<keyof Agent, WireNames<"AgentSummary">>>,
  Assert<Same<Exclude<keyof JobCreateParams, "input" | "files">, WireNames<"JobCreate">>>,
];
