import { WaitTimeoutError } from "../errors.js";
import { FINAL_JOB_STATUSES } from "../fields.js";
import { type HttpClient, sleep } from "../http.js";
import type { FileInput, Job, JobCreateParams, JobListParams, JobOutput, JsonObject, WaitOptions } from "../types.js";
import { asBlob, camelize, encodeForm, toIso } from "../wire.js";
import { paginate, type Page } from "./pagination.js";

const LONG_POLL_SECONDS = 60; // the service's longest `?wait=`

export interface JobTransition {
  fromStatus: string | null;
  toStatus: string;
  reason: string | null;
  createdAt: string;
  [field: string]: unknown;
}

export class Jobs {
  constructor(private readonly http: HttpClient) {}

  /**
   * Create a job. With `files`, the job and its files go in one multipart request; otherwise JSON.
   * `idempotencyKey`: the SDK makes one per call when not given.
   */
  async create(params: JobCreateParams, options: { idempotencyKey?: string } = {}): Promise<Job> {
    const body = wireJob(params);
    if (params.files?.length) {
      const form = new FormData();
      form.set("agent_id", params.agentId);
      form.set("input_data", JSON.stringify(body.input_data ?? {}));
      form.set("config", JSON.stringify(body.config ?? {}));
      if (params.priority !== undefined) form.set("priority", String(params.priority));
      if (params.fileIds?.length) form.set("file_ids", params.fileIds.join(","));
      if (params.webhook != null) form.set("webhook", params.webhook);
      if (params.webhookEventsFilter != null) form.set("webhook_events_filter", params.webhookEventsFilter.join(","));
      params.files.forEach((file: FileInput, index) => {
        const { blob, filename } = asBlob(file, `file${index + 1}`);
        form.append("files", blob, filename);
      });
      const encoded = await encodeForm(form);
      const job = await this.http.json<JsonObject>("POST", "/jobs", {
        body: encoded.body,
        headers: { "Content-Type": encoded.contentType },
        ...options,
      });
      return camelize<Job>(job);
    }
    return camelize<Job>(await this.http.json<JsonObject>("POST", "/jobs", { json: body, ...options }));
  }

  /** Up to 100 jobs in one request, all or none (files must be uploaded first: use `fileIds`). */
  async createBatch(jobs: JobCreateParams[], options: { idempotencyKey?: string } = {}): Promise<Job[]> {
    if (jobs.some((job) => job.files?.length)) {
      throw new TypeError("createBatch takes fileIds: upload the files first with files.upload()");
    }
    const answer = await this.http.json<{ data: JsonObject[] }>("POST", "/jobs/batch", {
      json: { jobs: jobs.map(wireJob) },
      ...options,
    });
    return answer.data.map((job) => camelize<Job>(job));
  }

  /** The job; with `wait` (seconds, at most 60) the service answers as soon as it is final. */
  async get(jobId: string, options: { wait?: number } = {}): Promise<Job> {
    const wait = options.wait ?? 0;
    const job = await this.http.json<JsonObject>("GET", `/jobs/${encodeURIComponent(jobId)}`, {
      query: wait > 0 ? { wait } : {},
      timeout: wait > 0 ? wait * 1000 + 30_000 : undefined,
    });
    return camelize<Job>(job);
  }

  /** Every job matching the filters, newest first, fetching pages as the loop goes on. */
  list(params: JobListParams = {}): AsyncIterable<Job> & { firstPage(): Promise<Page<Job>> } {
    const query = {
      status: params.status,
      agent_id: params.agentId,
      created_after: toIso(params.createdAfter),
      created_before: toIso(params.createdBefore),
      limit: params.limit,
    };
    return paginate(this.http, "/jobs", query, (job) => camelize<Job>(job));
  }

  /** The output of a completed job (409 `ConflictError` before then). */
  async getOutput(jobId: string): Promise<JobOutput> {
    return camelize<JobOutput>(
      await this.http.json<JsonObject>("GET", `/jobs/${encodeURIComponent(jobId)}/output`),
    );
  }

  async history(jobId: string): Promise<JobTransition[]> {
    const rows = await this.http.json<JsonObject[]>("GET", `/jobs/${encodeURIComponent(jobId)}/history`);
    return rows.map((row) => camelize<JobTransition>(row));
  }

  async cancel(jobId: string): Promise<Job> {
    return camelize<Job>(await this.http.json<JsonObject>("POST", `/jobs/${encodeURIComponent(jobId)}/cancel`));
  }

  /** Run a failed or dead-lettered job again. */
  async retry(jobId: string): Promise<Job> {
    return camelize<Job>(await this.http.json<JsonObject>("POST", `/jobs/${encodeURIComponent(jobId)}/retry`));
  }

  /**
   * The job once it is final (completed, failed, dead_letter or cancelled), whichever that is: check
   * `status`. Long-polls `?wait=`, so it returns as soon as the job finishes. Throws `WaitTimeoutError`
   * after `timeout` milliseconds (default ten minutes).
   */
  async waitForCompletion(jobId: string, options: WaitOptions = {}): Promise<Job> {
    const timeout = options.timeout ?? 600_000;
    const pollInterval = options.pollInterval ?? 5_000;
    const deadline = Date.now() + timeout;
    let job: Job | undefined;
    for (;;) {
      const remaining = deadline - Date.now();
      if (job !== undefined && remaining <= 0) {
        throw new WaitTimeoutError(`job ${jobId} is still ${job.status} after ${timeout} ms`, job);
      }
      const wait = Math.max(0, Math.min(LONG_POLL_SECONDS, Math.floor(remaining / 1000)));
      const asked = Date.now();
      job = await this.get(jobId, { wait });
      if (FINAL_JOB_STATUSES.includes(job.status)) return job;
      // The service answered before the long poll was up without the job being final (a proxy's
      // timeout, a restart): wait a little before asking again rather than hammering it.
      const early = wait * 1000 - (Date.now() - asked);
      if (early > 1000 || wait === 0) await sleep(Math.min(pollInterval, Math.max(0, deadline - Date.now())));
    }
  }
}

/** The API's body for a job: `input` and `inputData` both become `input_data`. */
function wireJob(params: JobCreateParams): Record<string, unknown> {
  if (params.input !== undefined && params.inputData !== undefined) {
    throw new TypeError("give either input or inputData, not both");
  }
  const body: Record<string, unknown> = { agent_id: params.agentId };
  const input = params.input ?? params.inputData;
  if (input !== undefined) body.input_data = input;
  if (params.config !== undefined) body.config = params.config;
  if (params.fileIds !== undefined) body.file_ids = params.fileIds;
  if (params.priority !== undefined) body.priority = params.priority;
  if (params.webhook !== undefined) body.webhook = params.webhook;
  if (params.webhookEventsFilter !== undefined) body.webhook_events_filter = params.webhookEventsFilter;
  return body;
}
