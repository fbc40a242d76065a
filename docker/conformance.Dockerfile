# jobwire conformance runner (conformance/), with the Python reference worker so that
# `--impl python` and `--impl python-inline` run inside the image. Build from the repository root:
#   docker build --network host -f docker/conformance.Dockerfile -t jobwire/conformance .
# The repository layout is kept under /app (JOBWIRE_REPO_ROOT), so the manifests' paths resolve.
ARG BASE=python:3.12-slim
FROM ${BASE}
ARG JW_PIP_INDEX_URL=
ARG JW_PIP_EXTRA_INDEX_URL=
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    JOBWIRE_SPEC_DIR=/app/spec JOBWIRE_REPO_ROOT=/app JOBWIRE_CONFORMANCE_DIR=/app/conformance \
    PATH=/app/.venv/bin:$PATH
# Some groups restart a private redis-server of their own (the Redis-outage tests).
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY python/requirements.lock python/requirements.lock
# docker/requirements.txt: the Docker SDK for `--image` (give the runner the engine's socket).
COPY docker/requirements.txt docker/requirements.txt
RUN python3 -m venv /app/.venv \
 && /app/.venv/bin/pip install -q ${JW_PIP_INDEX_URL:+--index-url "$JW_PIP_INDEX_URL"} \
      ${JW_PIP_EXTRA_INDEX_URL:+--extra-index-url "$JW_PIP_EXTRA_INDEX_URL"} -r python/requirements.lock \
      -r docker/requirements.txt "setuptools>=77"
# The builds read the release version from VERSION (python/LICENSE and conformance/LICENSE link to LICENSE).
COPY VERSION LICENSE ./
COPY spec spec
COPY python python
COPY conformance conformance
RUN /app/.venv/bin/pip install -q --no-deps --no-build-isolation ./python ./conformance \
 && jobwire-conformance --list >/dev/null
# Lets scripts/containers.sh prune the old builds of its own images (and nothing else).
LABEL org.jobwire.image=conformance
ENTRYPOINT ["jobwire-conformance"]
CMD ["--impl", "python", "--impl", "python-inline", "--no-figures"]
