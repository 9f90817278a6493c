// The platform guide's "Pre-signed URLs (Large Files)" snippet, then the same upload through the SDK;
// run by test/examples.test.ts against a real service. The guide's three steps are kept, with these
// differences, and why:
// - the guide's relative URLs ('/v1/files/upload-url') only work on a page served by the API itself:
//   here they are prefixed with the service's origin, and 'Bearer TOKEN' is the API key;
// - `fetch` resolves to a Response, not to its JSON: step 1 reads the body (`.then((r) => r.json())`),
//   which the guide's destructuring skips;
// - step 1 says `Content-Type: application/json`, without which the body is not read as JSON;
// - the file is a small text file rather than a 500 MB video (the tests' free plan takes 25 MB, and the
//   service checks that the bytes really are of the declared type).
import { CoExAI } from '@coexai/sdk';

const API = new URL(process.env.COEXAI_BASE_URL!).origin;
const TOKEN = process.env.COEXAI_API_KEY!;
const fileBlob = new Blob(['Meeting notes\nThe launch moves to May.\n'.repeat(1000)], { type: 'text/plain' });

// 1. Request upload URL
const { upload_url, file_id } = await fetch(`${API}/v1/files/upload-url`, {
  method: 'POST',
  headers: { 'Authorization': `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
  body: JSON.stringify({
    filename: 'notes.txt',
    content_type: 'text/plain',
    size_bytes: fileBlob.size
  })
}).then((r) => r.json());

// 2. Upload directly to storage
await fetch(upload_url, {
  method: 'PUT',
  body: fileBlob,
  headers: { 'Content-Type': 'text/plain' }
});

// 3. Confirm upload
const confirmed = await fetch(`${API}/v1/files/${file_id}/confirm`, {
  method: 'POST',
  headers: { 'Authorization': `Bearer ${TOKEN}` }
}).then((r) => r.json());
console.log('Guide upload:', file_id, confirmed.status);

// The same three steps with the SDK.
const coexai = new CoExAI({ apiKey: TOKEN, baseUrl: process.env.COEXAI_BASE_URL });
const file = await coexai.files.uploadLarge(fileBlob, { filename: 'notes.txt', contentType: 'text/plain' });
console.log('SDK upload:', file.id, file.status);
