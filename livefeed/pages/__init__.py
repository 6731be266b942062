"""Server-rendered pages: reader, archive, editor and embed pages, syndication, the API page."""
