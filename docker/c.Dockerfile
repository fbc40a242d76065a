# jobwire C worker and enqueuer (examples-c). Build from the repository root:
#   docker build --network host -f docker/c.Dockerfile -t jobwire/c .
# BASE is any Debian 12 image (default: the official slim image).
ARG BASE=debian:bookworm-slim
FROM ${BASE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev make pkg-config libhiredis-dev libjansson-dev libmd-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src/examples-c
# The Makefile reads the release version from ../VERSION (jobwire-worker --version).
COPY VERSION /src/VERSION
COPY examples-c/ ./
RUN make -s clean && make -s all
LABEL org.jobwire.image=c-build

FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends libhiredis0.14 libjansson4 libmd0 \
 && rm -rf /var/lib/apt/lists/*
# The worker finds the protocol files at ../spec next to its executable.
COPY spec /app/spec
COPY --from=build /src/examples-c/jobwire-worker /src/examples-c/jobwire-enqueue /app/examples-c/
ENV JOBWIRE_SPEC_DIR=/app/spec PATH=/app/examples-c:$PATH
WORKDIR /app/examples-c
# jobwire-enqueue is the enqueuer: docker run --entrypoint jobwire-enqueue IMAGE ...
# Lets scripts/containers.sh prune the old builds of its own images (and nothing else).
LABEL org.jobwire.image=c
ENTRYPOINT ["jobwire-worker"]
CMD ["--queues", "default"]
