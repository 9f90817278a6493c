import { APIError, APIConnectionError } from "../errors.js";
import type { HttpClient } from "../http.js";
import type {
  FileInput,
  FileRecord,
  FileUploadOptions,
  JsonObject,
  UploadUrl,
  UploadUrlParams,
} from "../types.js";
import { asBlob, camelize, encodeForm } from "../wire.js";
import { paginate, type Page } from "./pagination.js";

export class Files {
  constructor(private readonly http: HttpClient) {}

  /** Direct upload (`POST /v1/files`, multipart): for files up to the plan's limit, held in memory. */
  async upload(file: FileInput, options: FileUploadOptions & { idempotencyKey?: string } = {}): Promise<FileRecord> {
    const { blob, filename } = asBlob(file, options.filename ?? "file", options.contentType);
    const form = new FormData();
    form.set("file", blob, options.filename ?? filename);
    if (options.metadata !== undefined) form.set("metadata", JSON.stringify(options.metadata));
    if (options.agentId !== undefined) form.set("agent_id", options.agentId);
    const encoded = await encodeForm(form);
    const record = await this.http.json<JsonObject>("POST", "/files", {
      body: encoded.body,
      headers: { "Content-Type": encoded.contentType },
      idempotencyKey: options.idempotencyKey,
    });
    return camelize<FileRecord>(record);
  }

  /** Step 1 of a pre-signed upload: a URL that takes the bytes with one PUT, without the API key. */
  async createUploadUrl(params: UploadUrlParams): Promise<UploadUrl> {
    const answer = await this.http.json<JsonObject>("POST", "/files/upload-url", {
      json: { filename: params.filename, content_type: params.contentType, size_bytes: params.sizeBytes },
    });
    return camelize<UploadUrl>(answer);
  }

  /**
   * Step 2: PUT the bytes to the URL with the declared Content-Type. The URL is the service's own or a
   * bucket's (S3): no Authorization header is sent to it, and it is not retried (it works once).
   */
  async putToUploadUrl(uploadUrl: string, data: Blob, contentType: string): Promise<void> {
    let response: Response;
    try {
      response = await this.http.options.fetch(uploadUrl, {
        method: "PUT",
        body: data,
        headers: { "Content-Type": contentType },
      });
    } catch (error) {
      throw new APIConnectionError(`PUT upload URL: ${String(error)}`, { cause: error });
    }
    if (!response.ok) throw await APIError.fromResponse(response);
    await response.body?.cancel().catch(() => undefined);
  }

  /** Step 3: the upload is checked (size, type from its bytes) and the file becomes `ready`. */
  async confirm(fileId: string): Promise<FileRecord> {
    return camelize<FileRecord>(
      await this.http.json<JsonObject>("POST", `/files/${encodeURIComponent(fileId)}/confirm`),
    );
  }

  /** The three steps of a pre-signed upload (the guide's way for files over 100 MB). */
  async uploadLarge(file: FileInput, options: { filename?: string; contentType?: string } = {}): Promise<FileRecord> {
    const { blob, filename } = asBlob(file, options.filename ?? "file", options.contentType);
    const contentType = options.contentType ?? (blob.type || "application/octet-stream");
    const url = await this.createUploadUrl({
      filename: options.filename ?? filename,
      contentType,
      sizeBytes: blob.size,
    });
    await this.putToUploadUrl(url.uploadUrl, blob, contentType);
    return this.confirm(url.fileId);
  }

  async get(fileId: string): Promise<FileRecord> {
    return camelize<FileRecord>(await this.http.json<JsonObject>("GET", `/files/${encodeURIComponent(fileId)}`));
  }

  list(params: { status?: "pending" | "ready"; limit?: number } = {}): AsyncIterable<FileRecord> & {
    firstPage(): Promise<Page<FileRecord>>;
  } {
    return paginate(this.http, "/files", { ...params }, (file) => camelize<FileRecord>(file));
  }

  /** The file's bytes. */
  async content(fileId: string): Promise<Blob> {
    const response = await this.http.request("GET", `/files/${encodeURIComponent(fileId)}/content`, {
      headers: { Accept: "*/*" },
    });
    return response.blob();
  }

  async delete(fileId: string): Promise<void> {
    const response = await this.http.request("DELETE", `/files/${encodeURIComponent(fileId)}`);
    await response.body?.cancel().catch(() => undefined);
  }
}
