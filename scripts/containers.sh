#!/usr/bin/env bash
# jobwire in containers: the engine, local stand-in base images, the project's images, and the
# container tests (docker/tests, pytest with the Docker SDK for Python; docker/README.md).
#
#   bash scripts/containers.sh test [ARGS]  everything, from a fresh Debian 12 root machine (CI);
#                                           ARGS go to pytest (e.g. -k matrix)
#   bash scripts/containers.sh engine       install docker.io/debootstrap/docker-compose, start dockerd
#   bash scripts/containers.sh bases        build the stand-in base images (no registry needed)
#   bash scripts/containers.sh build        build the project's images on those bases
#   bash scripts/containers.sh compose ARGS docker-compose with the stand-in bases, e.g. `compose up`
#   bash scripts/containers.sh clean        remove the containers this script (or the suite's --image) started
#   bash scripts/containers.sh stop-engine  stop the dockerd this script started (by its pid file)
#
# Environment:
#   JOBWIRE_BASES=standin|official  standin (default): build base images from Debian's packages with
#                                   debootstrap; official: use python:3.12-slim, node:20-slim,
#                                   debian:bookworm-slim, redis:7 from a registry
#   JOBWIRE_KEEP_ENGINE=1           `test` leaves running a dockerd this script started (by
#                                   default it stops it at the end, by the pid in its pid file)
#   JOBWIRE_CONTAINERS_TIMEOUT=S    bound for the whole `test` (default 2700 s)
#   JOBWIRE_CONTAINERS_JOBS=2       jobs per cell of the matrix across containers
#   JOBWIRE_CONTAINERS_PROCS=1      pytest processes for docker/tests (2: the fresh machine beside the rest; not in CI)
#   DOCKER=PATH                     the docker client to use (default /usr/bin/docker, else PATH's)
#
# Networking: dockerd runs with no bridge and no NAT; every build and container uses the host's
# network and every server binds 127.0.0.1. No host name of any registry or mirror is written
# here: the Debian mirror comes from this machine's apt sources, pip's index and npm's registry
# from this machine's own configuration, all read at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

STATE=${JOBWIRE_CONTAINERS_STATE:-/var/lib/jobwire-containers}
PIDFILE=$STATE/dockerd.pid
RUN_ID="jwc-$$"
BASES=${JOBWIRE_BASES:-standin}
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0

log() { printf '[containers %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The docker client as an absolute path, or empty when there is none. Resolved again after
# install_packages: on a fresh machine there is no client until docker.io is installed. Debian's
# client (/usr/bin/docker) matches Debian's engine (20.10); another client on PATH may be newer.
# $DOCKER from the environment wins (a name is looked up on PATH, never as the function below).
resolve_docker() {
  local want=${JOBWIRE_DOCKER_CLIENT:-}
  if [ -z "$want" ] && [ -f /usr/bin/docker ] && [ -x /usr/bin/docker ]; then want=/usr/bin/docker; fi
  DOCKER=$(type -P "${want:-docker}" || true)
  # bash names a file it cannot execute when no executable one is found: that is no client.
  { [ -f "$DOCKER" ] && [ -x "$DOCKER" ]; } || DOCKER=
}
JOBWIRE_DOCKER_CLIENT=${DOCKER:-}
resolve_docker
# `command` runs the client, never this function again (a wrapper that calls its own name recurses).
docker() {
  [ -n "$DOCKER" ] || die "no docker client on PATH or at /usr/bin/docker (bash scripts/containers.sh engine installs docker.io)"
  command "$DOCKER" "$@"
}

# The images every part names.
if [ "$BASES" = official ]; then
  PY_BASE=python:3.12-slim NODE_BASE=node:20-slim DEBIAN_BASE=debian:bookworm-slim REDIS_IMAGE=redis:7
else
  PY_BASE=jobwire-standin/python:bookworm NODE_BASE=jobwire-standin/node:bookworm
  DEBIAN_BASE=jobwire-standin/debian:bookworm REDIS_IMAGE=jobwire-standin/redis:bookworm
fi
IMG_PY=jobwire/python:local IMG_NODE=jobwire/node:local IMG_C=jobwire/c:local IMG_CONF=jobwire/conformance:local

# The parts, one file each under scripts/containers/: the engine, the images, the test.
# shellcheck source=containers/engine.sh
. "$ROOT/scripts/containers/engine.sh"
# shellcheck source=containers/images.sh
. "$ROOT/scripts/containers/images.sh"
# shellcheck source=containers/test.sh
. "$ROOT/scripts/containers/test.sh"

case "${1:-}" in
  engine) cmd_engine ;;
  stop-engine) cmd_stop_engine ;;
  bases) need_root; cmd_bases ;;
  build) need_root; cmd_bases; cmd_build ;;
  compose) shift; cmd_compose "$@" ;;
  clean) cmd_clean ;;
  test) shift; cmd_test "$@" ;;
  *) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 2 ;;
esac
exit
