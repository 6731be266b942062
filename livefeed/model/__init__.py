"""The model: feeds, briefs, text, stream ids, days and frames. Pure: no I/O, no livefeed import
above the infrastructure modules."""
