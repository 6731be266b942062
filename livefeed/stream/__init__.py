"""The stream to readers: a feed's events as the hub fans them out, catch-up, replay, transport."""
