import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { NotFoundError, ValidationError, WaitTimeoutError, type Job } from "@coexai/sdk";

import { client } from "./support.js";

const coexai = client();

describe("jobs", () => {
  test("create takes camelCase and waitForCompletion returns the finished job in camelCase", async () => {
    const job = await coexai.jobs.create({ agentId: "test-noop", input: { echo: { keptAsGiven: [1, 2] } }, priority: 5 });
    assert.match(job.id, /^job_/);
    assert.equal(job.agentId, "test-noop");
    assert.equal(job.priority, 5);
    assert.deepEqual(job.inputData, { echo: { keptAsGiven: [1, 2] } }); // an agent's input is not renamed

    const done = await coexai.jobs.waitForCompletion(job.id, { timeout: 30_000, pollInterval: 200 });
    assert.equal(done.status, "completed");
    assert.deepEqual(done.outputData, { echo: { keptAsGiven: [1, 2] }, files: [] });
    assert.ok(done.finishedAt);

    const output = await coexai.jobs.getOutput(job.id);
    assert.equal(output.jobId, job.id);
    assert.deepEqual(output.content, done.outputData);
    const history = await coexai.jobs.history(job.id);
    assert.equal(history.at(-1)?.toStatus, "completed");
  });

  test("inputData is the same as input, and giving both is refused before any request", async () => {
    const job = await coexai.jobs.create({ agentId: "test-noop", inputData: { echo: "x" } });
    assert.deepEqual(job.inputData, { echo: "x" });
    await assert.rejects(coexai.jobs.create({ agentId: "test-noop", input: {}, inputData: {} }), TypeError);
  });

  test("createBatch creates them all, and they complete", async () => {
    const jobs = await coexai.jobs.createBatch([0, 1, 2].map((i) => ({ agentId: "test-noop", input: { echo: i } })));
    assert.equal(jobs.length, 3);
    const results = await Promise.all(jobs.map((job) => coexai.jobs.waitForCompletion(job.id, { timeout: 30_000 })));
    assert.deepEqual(
      results.map((job) => job.outputData?.echo),
      [0, 1, 2],
    );
  });

  test("list pages through every job by itself", async () => {
    const created = await coexai.jobs.createBatch([0, 1, 2, 3, 4].map((i) => ({ agentId: "test-noop", input: { echo: i } })));
    const seen: Job[] = [];
    for await (const job of coexai.jobs.list({ agentId: "test-noop", limit: 2 })) seen.push(job);
    const ids = new Set(seen.map((job) => job.id));
    for (const job of created) assert.ok(ids.has(job.id), `${job.id} listed`);
    assert.equal(ids.size, seen.length, "no job listed twice");
    const first = await coexai.jobs.list({ limit: 2 }).firstPage();
    assert.equal(first.data.length, 2);
    assert.equal(first.hasMore, true);
    for (const job of created) await coexai.jobs.waitForCompletion(job.id, { timeout: 30_000 });
  });

  test("waitForCompletion gives up after its timeout with the job as last seen; cancel ends it", async () => {
    const job = await coexai.jobs.create({ agentId: "test-sleep", input: { seconds: 20 } });
    const started = Date.now();
    const error = await coexai.jobs.waitForCompletion(job.id, { timeout: 1500, pollInterval: 100 }).then(
      () => assert.fail("resolved"),
      (e: unknown) => e,
    );
    assert.ok(error instanceof WaitTimeoutError);
    assert.equal((error.job as Job).id, job.id);
    assert.ok(Date.now() - started < 10_000);
    const cancelled = await coexai.jobs.cancel(job.id);
    assert.equal(cancelled.status, "cancelled");
    assert.equal((await coexai.jobs.waitForCompletion(job.id)).status, "cancelled");
  });

  test("a failed job comes back failed, with its error, and retry runs it again", async () => {
    const job = await coexai.jobs.create({ agentId: "test-fail", input: { permanent: true, message: "bad input" } });
    const failed = await coexai.jobs.waitForCompletion(job.id, { timeout: 30_000 });
    assert.ok(["failed", "dead_letter"].includes(failed.status), failed.status);
    assert.match(failed.error?.message ?? "", /bad input/);
    const retried = await coexai.jobs.retry(job.id);
    assert.ok(!["failed", "dead_letter"].includes(retried.status), retried.status);
    await coexai.jobs.waitForCompletion(job.id, { timeout: 30_000 });
  });

  test("errors are typed and carry code, message, details and requestId", async () => {
    const missing = await coexai.jobs.get("job_doesnotexist").catch((e: unknown) => e);
    assert.ok(missing instanceof NotFoundError);
    assert.equal(missing.status, 404);
    assert.equal(missing.code, "NOT_FOUND");
    assert.match(missing.requestId ?? "", /^req_/);

    const invalid = await coexai.jobs.create({ agentId: "test-noop", priority: 1000 }).catch((e: unknown) => e);
    assert.ok(invalid instanceof ValidationError);
    assert.equal(invalid.code, "VALIDATION_ERROR");
    assert.ok(Object.keys(invalid.details).length > 0, JSON.stringify(invalid.details));
    assert.ok(invalid.message.length > 0);
  });
});
