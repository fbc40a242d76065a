# jobwire Node worker and enqueuer (examples-node). Build from the repository root:
#   docker build --network host -f docker/node.Dockerfile -t jobwire/node .
# BASE is any image with Node >= 18 and npm (default: the official slim image).
ARG BASE=node:20-slim
FROM ${BASE}
# This machine's npm registry, when it has its own (empty: npm's default).
ARG JW_NPM_REGISTRY=
ENV JOBWIRE_SPEC_DIR=/app/spec NODE_ENV=production
WORKDIR /app/examples-node
COPY examples-node/package.json examples-node/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error \
      ${JW_NPM_REGISTRY:+--registry "$JW_NPM_REGISTRY"} \
 && npm cache clean --force >/dev/null 2>&1 || true
COPY spec /app/spec
COPY examples-node/ ./
RUN node -e "import('./index.js').then(() => console.log('jobwire node ok'))"
# `node enqueue.js Q CLASS ARGS` is the enqueuer: docker run --entrypoint node IMAGE enqueue.js ...
# Lets scripts/containers.sh prune the old builds of its own images (and nothing else).
LABEL org.jobwire.image=node
ENTRYPOINT ["node", "worker.js"]
CMD ["--queues", "default"]
