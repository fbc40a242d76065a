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
# The runtime lock (python/requirements.lock: jobwire with its web extra, transitive pins).
COPY python/requirements.lock python/requirements.lock
RUN python3 -m venv /app/.venv \
 && /app/.venv/bin/pip install -q ${JW_PIP_INDEX_URL:+--index-url "$JW_PIP_INDEX_URL"} \
      ${JW_PIP_EXTRA_INDEX_URL:+--extra-index-url "$JW_PIP_EXTRA_INDEX_URL"} -r python/requirements.lock "setuptools>=77"
# The build reads the release version from VERSION (python/LICENSE links to LICENSE).
COPY VERSION LICENSE ./
COPY spec spec
COPY python python
RUN /app/.venv/bin/pip install -q --no-deps --no-build-isolation ./python \
 && jobwire version
# Everything binds 127.0.0.1 by default; with host networking the ports are the host's loopback.
# Lets scripts/containers.sh prune the old builds of its own images (and nothing else).
LABEL org.jobwire.image=python
ENTRYPOINT ["jobwire"]
CMD ["worker", "--queues", "default", "--import", "jobwire.conformance_jobs"]
