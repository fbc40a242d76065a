# jobwire Python: the reference worker, the client (`jobwire enqueue ...`) and the web UI
# (`jobwire web`), one image. Build from the repository root:
#   docker build --network host -f docker/python.Dockerfile -t jobwire/python .
# BASE is any image with python3 >= 3.11 and its venv module (default: the official slim image).
ARG BASE=python:3.12-slim
FROM ${BASE}
# This machine's package index, when it has its own (empty: pip's default).
ARG JW_PIP_INDEX_URL=
ARG JW_PIP_EXTRA_INDEX_URL=
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    JOBWIRE_SPEC_DIR=/app/spec PATH=/app/.venv/bin:$PATH
WORKDIR /app
# Runtime pins from python/requirements.txt (the test-only and browser packages are left out).
COPY python/requirements.txt python/requirements.txt
RUN python3 -m venv /app/.venv \
 && grep -E '^(redis|hiredis|jsonschema|setproctitle|flask|waitress)==' python/requirements.txt >/tmp/runtime.txt \
 && /app/.venv/bin/pip install -q ${JW_PIP_INDEX_URL:+--index-url "$JW_PIP_INDEX_URL"} \
      ${JW_PIP_EXTRA_INDEX_URL:+--extra-index-url "$JW_PIP_EXTRA_INDEX_URL"} -r /tmp/runtime.txt setuptools wheel
COPY spec spec
COPY python python
RUN /app/.venv/bin/pip install -q --no-deps --no-build-isolation ./python \
 && jobwire version
# Everything binds 127.0.0.1 by default; with host networking the ports are the host's loopback.
# Lets scripts/containers.sh prune the old builds of its own images (and nothing else).
LABEL org.jobwire.image=python
ENTRYPOINT ["jobwire"]
CMD ["worker", "--queues", "default", "--import", "jobwire.conformance_jobs"]
