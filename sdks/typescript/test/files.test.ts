import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { NotFoundError, UnsupportedMediaTypeError, type FileRecord } from "@coexai/sdk";

import { client } from "./support.js";

const coexai = client();
const text = "Quarterly notes.\nRevenue grew in every region.\n";

describe("files", () => {
  test("a direct upload, read back, listed and deleted", async () => {
    const file = await coexai.files.upload(new Blob([text], { type: "text/plain" }), {
      filename: "notes.txt",
      metadata: { source: "user_upload" },
    });
    assert.match(file.id, /^file_/);
    assert.equal(file.filename, "notes.txt");
    assert.equal(file.status, "ready");
    assert.equal(file.sizeBytes, Buffer.byteLength(text));
    assert.deepEqual(file.metadata, { source: "user_upload" });
    assert.equal(await (await coexai.files.content(file.id)).text(), text);
    assert.equal((await coexai.files.get(file.id)).id, file.id);

    const listed: FileRecord[] = [];
    for await (const each of coexai.files.list({ status: "ready" })) listed.push(each);
    assert.ok(listed.some((each) => each.id === file.id));

    await coexai.files.delete(file.id);
    await assert.rejects(coexai.files.get(file.id), NotFoundError);
  });

  test("the three-step pre-signed upload: upload URL, PUT without the key, confirm", async () => {
    const data = new TextEncoder().encode(text.repeat(100));
    const url = await coexai.files.createUploadUrl({ filename: "big.txt", contentType: "text/plain", sizeBytes: data.length });
    assert.match(url.fileId, /^file_/);
    assert.ok(url.uploadUrl.startsWith("http"), url.uploadUrl);
    assert.equal((await coexai.files.get(url.fileId)).status, "pending");
    await coexai.files.putToUploadUrl(url.uploadUrl, new Blob([data]), "text/plain");
    const ready = await coexai.files.confirm(url.fileId);
    assert.equal(ready.status, "ready");
    assert.equal(ready.sizeBytes, data.length);

    const once = await coexai.files.uploadLarge({ data, filename: "again.txt", contentType: "text/plain" });
    assert.equal(once.status, "ready");
    assert.equal(once.filename, "again.txt");
    assert.equal((await (await coexai.files.content(once.id)).arrayBuffer()).byteLength, data.length);
  });

  test("a file the service refuses is a typed error", async () => {
    const error = await coexai.files
      .upload(new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 3, 4, 5]), { filename: "tool.exe" })
      .catch((e: unknown) => e);
    assert.ok(error instanceof UnsupportedMediaTypeError, String(error));
    assert.equal(error.status, 415);
  });

  test("jobs take uploaded files by id, or files sent with the job in one request", async () => {
    const file = await coexai.files.upload(text, { filename: "a.txt", contentType: "text/plain" });
    const byId = await coexai.jobs.create({ agentId: "test-noop", input: { echo: 1 }, fileIds: [file.id] });
    assert.deepEqual(byId.fileIds, [file.id]);
    const done = await coexai.jobs.waitForCompletion(byId.id, { timeout: 30_000 });
    assert.deepEqual(done.outputData, { echo: 1, files: [file.id] });

    const withFiles = await coexai.jobs.create({
      agentId: "test-noop",
      input: { echo: 2 },
      files: [{ data: text, filename: "b.txt", contentType: "text/plain" }, new Blob(["second file\n"], { type: "text/plain" })],
    });
    assert.equal(withFiles.fileIds.length, 2);
    const finished = await coexai.jobs.waitForCompletion(withFiles.id, { timeout: 30_000 });
    assert.equal(finished.status, "completed");
    assert.deepEqual((finished.outputData?.files as string[]).length, 2);
  });
});
