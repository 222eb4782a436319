# StoreSCP for AWS HealthImaging: the SCP container. Build from the release's container/ directory
# (dist/<version>/container/), which holds this file, requirements.txt, scp/ and the manifest schema.
ARG BASE_IMAGE=python:3.12-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY requirements.txt /tmp/requirements.txt
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-compile --requirement /tmp/requirements.txt

FROM ${BASE_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HEALTH_PORT=8080
RUN groupadd --system --gid 10001 scp \
    && useradd --system --uid 10001 --gid scp --no-create-home --shell /usr/sbin/nologin scp
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY scp/ /app/scp/
COPY config/batch-manifest.schema.json /app/config/batch-manifest.schema.json
USER 10001:10001
EXPOSE 11112 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('HEALTH_PORT', '8080') + '/health', timeout=4)"]
STOPSIGNAL SIGTERM
CMD ["python", "-m", "scp"]
