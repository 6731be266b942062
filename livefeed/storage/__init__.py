"""Storage: everything livefeed keeps in Redis, and nothing else (no HTTP, no sockets)."""
