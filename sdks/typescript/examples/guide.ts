// The platform guide's TypeScript example ("SDK Examples", JavaScript/TypeScript), as printed, run by
// test/examples.test.ts against a real service. Differences from the guide, and why:
// - from `const coexai` to the route, the code is the guide's, byte for byte: the tests' service is not
//   https://api.coexai.com/v1, but the SDK reads COEXAI_BASE_URL when `baseUrl` is not given, and the
//   test sets it (with COEXAI_API_KEY and COEXAI_WEBHOOK_SECRET);
// - the guide's `input` is maya's own fields in camelCase with short format names (`twitter`), which the
//   SDK passes through as given and the service accepts beside `source_type`/`twitter_thread`;
// - `app` comes from ./app.js, an Express-compatible stand-in (see there), instead of `express()`;
// - the last line prints the job's id and status so that the test can tell this job's webhook apart.
import { CoExAI } from '@coexai/sdk';

import { app } from './app.js';

const coexai = new CoExAI({
  apiKey: process.env.COEXAI_API_KEY,
  // Optional: webhook secret for verification
  webhookSecret: process.env.COEXAI_WEBHOOK_SECRET
});

// Create a job
const job = await coexai.jobs.create({
  agentId: 'maya',
  input: {
    sourceType: 'text',
    content: 'Your content here...',
    targetFormats: ['twitter', 'linkedin']
  }
});

// Poll for completion
const result = await coexai.jobs.waitForCompletion(job.id, {
  timeout: 600000, // 10 minutes
  pollInterval: 5000 // 5 seconds
});

// Or use webhooks
app.post('/webhooks/coexai', coexai.webhooks.handler((event) => {
  if (event.type === 'job.completed') {
    console.log('Job completed:', event.data.id);
  }
}));

console.log('Created:', job.id, result.status);
