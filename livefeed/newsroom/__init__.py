"""The newsroom: what editors do to a feed, and moving a feed in and out (export, import)."""
