# Stand-in for redis:7: Debian 12's redis-server (7.0). Run it with an explicit command, e.g.
# `redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no`.
ARG DEBIAN=jobwire-standin/debian:bookworm
FROM ${DEBIAN}
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server redis-tools \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /var/cache/apt/*.bin
CMD ["redis-server", "--bind", "127.0.0.1", "--port", "6379", "--protected-mode", "yes"]
