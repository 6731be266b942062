"""Outbound: what livefeed fetches from other sites (embeds and link cards), and the copies it
keeps of their images. Above storage, below newsroom; never imports Redis or Starlette."""
