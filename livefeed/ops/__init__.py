"""Operating livefeed: the command line, serving, checks and the demo feed."""
