"""livefeed: a live-blog event stream service."""
