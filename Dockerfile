# livefeed against an external Redis (see docker-compose.yml). Build: docker build -t livefeed .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    LIVEFEED_HOST=0.0.0.0 LIVEFEED_PORT=8000

WORKDIR /app
COPY pyproject.toml README.md ./
COPY livefeed ./livefeed
COPY web ./web
RUN pip install --no-cache-dir . \
 && useradd --system --uid 10001 livefeed
USER livefeed

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"
CMD ["livefeed", "serve"]
