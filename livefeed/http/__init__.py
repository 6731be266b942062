"""The JSON HTTP API: endpoints, the OpenAPI document, and the HTTP edge."""
