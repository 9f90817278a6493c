"""`Idempotency-Key` on platform POSTs."""
