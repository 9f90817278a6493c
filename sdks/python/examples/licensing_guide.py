"""The licensing guide's `LicenseSessionManager` in use ("Implementing Robust Heartbeat" and "Session
Management": always release on exit, store the session id for recovery after a crash), with the SDK's
manager in place of the guide's hand-written class. Run by tests/test_sdk_licensing.py, which SIGKILLs
it while it holds a seat and starts it again: the same session continues.

Where it differs from the guide, and why:
- the client is the SDK's `LicensingClient` with an API key from the environment (COEXAI_API_KEY,
  COEXAI_BASE_URL) rather than the guide's `CoditectClient` with `login()`;
- `session_file=` is the SDK's addition that makes "store session ID for recovery after crash" work;
- HEARTBEAT_SECONDS (default the guide's 180) is shortened by the test; the program runs until the
  file STOP_FILE appears, then exits normally and the manager releases the seat at exit.
"""

import json
import os
import sys
import threading
import time
from pathlib import Path

from coexai import LicenseSessionManager, LicensingClient, get_hardware_id

client = LicensingClient(api_key=os.environ["COEXAI_API_KEY"], base_url=os.environ["COEXAI_BASE_URL"])
stop_file = Path(os.environ["STOP_FILE"])
lost = threading.Event()


def on_session_lost(error: Exception) -> None:  # called from the heartbeat thread
    print(json.dumps({"lost": str(error)}), flush=True)
    lost.set()


manager = LicenseSessionManager(
    client,
    on_session_lost=on_session_lost,
    session_file=os.environ["SESSION_FILE"],
    heartbeat_interval=float(os.environ.get("HEARTBEAT_SECONDS", "180")),
)
session = manager.acquire(os.environ["LICENSE_KEY"], os.environ.get("HARDWARE_ID") or get_hardware_id())
print(json.dumps({"session_id": session.session_id, "resumed": manager.resumed}), flush=True)

# ... do work ...
while not stop_file.exists() and not lost.is_set():
    time.sleep(0.1)
if lost.is_set():
    sys.exit(2)
# Leaving the program releases the seat (atexit), as the guide asks: "Always release license seats on
# application exit".
