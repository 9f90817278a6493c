/**
 * The guide's snippets in examples/ run as programs against the real service (only the base URL and
 * key changed). guide.ts creates a maya job, waits for it, and mounts the webhook handler; a webhook
 * subscribed to job.completed then delivers to it, and it prints the event's job id.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { test } from "node:test";

import { client, until } from "./support.js";

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test("the guide's TypeScript snippet runs: a maya job completes and its webhook reaches the handler", async () => {
  const port = await freePort();
  const admin = client();
  const webhook = await admin.webhooks.create({ url: `http://127.0.0.1:${port}/webhooks/coexai`, events: ["job.completed"] });
  const script = fileURLToPath(new URL("../examples/guide.js", import.meta.url));
  const child = spawn(process.execPath, [script], {
    env: { ...process.env, PORT: String(port), COEXAI_WEBHOOK_SECRET: webhook.secret },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  try {
    const [, jobId, status] = await until("the snippet's job", () => /Created: (job_\S+) (\w+)/.exec(output) ?? undefined, 60);
    assert.equal(status, "completed", output);
    const job = await admin.jobs.get(jobId!);
    assert.equal(job.agentId, "maya");
    // The guide's camelCase input and short format names reached maya as its own fields.
    const produced = JSON.stringify(job.outputData);
    assert.ok(produced.includes("twitter_thread") && produced.includes("linkedin_post"), produced);
    assert.ok(!produced.includes('"newsletter"'), produced);
    await until("the webhook delivery in the snippet's handler", () => (output.includes(`Job completed: ${jobId}`) ? true : undefined), 30);
  } finally {
    child.kill();
    await admin.webhooks.delete(webhook.id);
  }
});

test("the guide's pre-signed upload snippet runs, and the SDK's uploadLarge does the same", async () => {
  const script = fileURLToPath(new URL("../examples/presigned-upload.js", import.meta.url));
  const done = spawnSync(process.execPath, [script], { env: process.env, encoding: "utf8", timeout: 60_000 });
  assert.equal(done.status, 0, done.stdout + done.stderr);
  const guide = /Guide upload: (file_\S+) (\w+)/.exec(done.stdout);
  const sdk = /SDK upload: (file_\S+) (\w+)/.exec(done.stdout);
  assert.equal(guide?.[2], "ready", done.stdout);
  assert.equal(sdk?.[2], "ready", done.stdout);
  const coexai = client();
  for (const id of [guide![1]!, sdk![1]!]) {
    const file = await coexai.files.get(id);
    assert.equal(file.status, "ready");
    assert.equal(file.sizeBytes, 39_000);
  }
});
