# StoreSCP for AWS HealthImaging: the SCP container. Build context: dist/<version>/container/, as
# `make release` writes it (this file, the lock files, the locked wheels, scp/, the manifest schema).
# The build needs no network: Python packages come from the wheels in the context, hash-checked.
# BASE_IMAGE: a Debian-based image with python3 >= 3.11. The default is the one `make release`
# builds from Debian packages (generator/release/image.py, mmdebstrap) and tags on this machine; a registry
# image works too: --build-arg BASE_IMAGE=python:3.11-slim-bookworm
ARG BASE_IMAGE=localhost/storescp-base:bookworm

FROM ${BASE_IMAGE} AS build
COPY requirements.lock requirements-build.lock /tmp/
COPY wheels/ /tmp/wheels/
# pip runs from its own wheel and stays out of the image; the packages' own test suites are
# dropped; byte code is compiled with hash-based invalidation (reproducible, and valid on a
# read-only root filesystem).
RUN python3 -m venv --without-pip /opt/venv \
    && /opt/venv/bin/python "$(echo /tmp/wheels/pip-*.whl)/pip" install --quiet --no-index \
        --find-links /tmp/wheels --require-hashes --no-deps --no-compile \
        --disable-pip-version-check --requirement /tmp/requirements.lock \
    && find /opt/venv/lib -depth -type d -path '*/site-packages/*/tests' -exec rm -r {} + \
    && /opt/venv/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/venv/lib
COPY scp/ /app/scp/
COPY config/batch-manifest.schema.json /app/config/batch-manifest.schema.json
RUN /opt/venv/bin/python -m compileall -q --invalidation-mode unchecked-hash /app/scp

FROM ${BASE_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STORAGE=/data \
    TMPDIR=/scratch
# uid/gid 10001, written directly so the image does not depend on the day it was built.
RUN echo 'scp:x:10001:10001:StoreSCP:/nonexistent:/usr/sbin/nologin' >> /etc/passwd \
    && echo 'scp:x:10001:' >> /etc/group \
    && mkdir /data /scratch \
    && chown 10001:10001 /data /scratch \
    && chmod 0700 /scratch
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /app
USER 10001:10001
# /data: received instances (folder store, the default) and their temporary files.
# /scratch: temporary files of instances being received (TMPDIR; the task definition sets
# TEMP_DIR to it and mounts its volume there). On Fargate a task-definition volume is an empty
# folder owned by root with mode 0755 unless the image declares its path a VOLUME; then it gets
# this folder's owner and mode (ECS developer guide, "Use bind mounts with Amazon ECS",
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/bind-mounts.html). With a
# read-only root these are the only places the SCP can write.
VOLUME ["/data", "/scratch"]
EXPOSE 11112 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('HEALTH_PORT', '8080') + '/health', timeout=4)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["python", "-m", "scp"]
