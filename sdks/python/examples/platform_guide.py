"""The platform guide's Python SDK example ("SDK Examples" > "Python"), as printed, run by
tests/test_sdk_guides.py against real `serve` and `worker` processes.

Where it differs from the guide, and why:
- the API key and base URL come from the environment (COEXAI_API_KEY, COEXAI_BASE_URL) instead of
  `api_key="your_api_key"` (the only change the guide's reader makes);
- the async part opens an `AsyncCoExAI`: the guide awaits `coexai.jobs.create_batch(...)` on the same
  name as the sync client, and a sync method's answer cannot be awaited;
- the guide defines `process_documents()` without calling it; the last lines run it and print what
  it returns, so that the test can check both parts.
"""

import os

from coexai import AsyncCoExAI, CoExAI

API_KEY = os.environ["COEXAI_API_KEY"]
BASE_URL = os.environ["COEXAI_BASE_URL"]

# --- the guide, from here ---
# fmt: off
coexai = CoExAI(api_key=API_KEY, base_url=BASE_URL)

# Create job with file upload
with open("document.pdf", "rb") as f:
    job = coexai.jobs.create(
        agent_id="taylor",
        input_data={"extraction_type": "ocr"},
        files=[f]
    )

# Get result
result = coexai.jobs.get_output(job.id)
print(result.content)

# Async support
import asyncio  # noqa: E402


async def process_documents():
    coexai = AsyncCoExAI(api_key=API_KEY, base_url=BASE_URL)  # differs from the guide: see the docstring
    jobs = await coexai.jobs.create_batch([
        {"agent_id": "taylor", "file": "doc1.pdf"},
        {"agent_id": "taylor", "file": "doc2.pdf"}
    ])
    results = await asyncio.gather(*[
        coexai.jobs.wait_for_completion(job.id)
        for job in jobs
    ])
    return results
# fmt: on


# --- the guide ends here ---
for finished in asyncio.run(process_documents()):
    print(finished.id, finished.status, finished.output_data)
