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
LABEL="org.jobwire.containers=$RUN_ID"
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

# -- images -------------------------------------------------------------------------------------

if [ "$BASES" = official ]; then
  PY_BASE=python:3.12-slim NODE_BASE=node:20-slim DEBIAN_BASE=debian:bookworm-slim REDIS_IMAGE=redis:7
else
  PY_BASE=jobwire-standin/python:bookworm NODE_BASE=jobwire-standin/node:bookworm
  DEBIAN_BASE=jobwire-standin/debian:bookworm REDIS_IMAGE=jobwire-standin/redis:bookworm
fi
IMG_PY=jobwire/python:local IMG_NODE=jobwire/node:local IMG_C=jobwire/c:local IMG_CONF=jobwire/conformance:local

# -- the engine -----------------------------------------------------------------------------------

need_root() {
  [ "$(id -u)" = 0 ] || die "must run as root: it installs packages and starts dockerd (running as uid $(id -u))"
}

install_packages() {
  local want=() p
  for p in docker.io docker-compose debootstrap tini python3 curl; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || want+=("$p")
  done
  if ((${#want[@]})); then
    log "apt-get install ${want[*]}"
    timeout 900 apt-get update -qq || die "apt-get update failed"
    # Keep the package from starting its own dockerd (which would make a bridge with a
    # private-range address): a policy-rc.d for the time of the install, if there is none.
    local policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      policy=/usr/sbin/policy-rc.d
      printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
    fi
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq "${want[@]}" >/dev/null \
      || { [ -z "$policy" ] || rm -f "$policy"; die "apt-get install ${want[*]} failed"; }
    [ -z "$policy" ] || rm -f "$policy"
  fi
  resolve_docker  # the client docker.io just installed
  [ -n "$DOCKER" ] || die "docker.io is installed but no docker client is on PATH or at /usr/bin/docker"
}

engine_up() { [ -n "$DOCKER" ] && timeout 10 "$DOCKER" info >/dev/null 2>&1; }

our_dockerd_pid() {
  local pid
  [ -f "$PIDFILE" ] || return 1
  pid=$(cat "$PIDFILE")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q '^dockerd ' \
    && echo "$pid"
}

start_dockerd() {  # $1: storage driver
  local driver=$1 pid i
  mkdir -p "$STATE"
  log "starting dockerd (storage driver $driver, no bridge, no iptables)"
  setsid dockerd --bridge=none --iptables=false --ip-masq=false --ip6tables=false \
    --storage-driver="$driver" --pidfile="$STATE/dockerd.own.pid" \
    >"$STATE/dockerd.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$PIDFILE"
  for i in $(seq 1 60); do
    engine_up && { echo "$driver" >"$STATE/storage-driver"; log "dockerd pid $pid is up"; return 0; }
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  log "dockerd ($driver) did not come up; last lines of $STATE/dockerd.log:"
  tail -n 15 "$STATE/dockerd.log" >&2 || true
  kill "$pid" 2>/dev/null || true
  for i in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  rm -f "$PIDFILE"
  return 1
}

cmd_engine() {
  need_root
  install_packages
  if engine_up; then
    log "a Docker engine is already running; using it"
    return 0
  fi
  local first=overlay2
  [ -f "$STATE/storage-driver" ] && first=$(cat "$STATE/storage-driver")
  start_dockerd "$first" && return 0
  if [ "$first" != vfs ]; then start_dockerd vfs && return 0; fi
  die "dockerd cannot start here (see $STATE/dockerd.log): containers need root with the privileges to create namespaces and mounts"
}

cmd_stop_engine() {
  local pid i
  if pid=$(our_dockerd_pid); then
    log "stopping dockerd pid $pid (started by this script)"
    kill -TERM "$pid"
    for i in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && { log "dockerd pid $pid still running after 30 s; SIGKILL"; kill -KILL "$pid"; }
    rm -f "$PIDFILE"
  else
    log "no dockerd started by this script is running"
  fi
}

# -- stand-in base images -----------------------------------------------------------------------

debian_mirror() {  # the first Debian (not security) URI of this machine's apt sources
  local uri
  uri=$(awk '
      /^[[:space:]]*#/ { next }
      /^Types:/ { types=$0 } /^URIs:/ { uris=$2 } /^Suites:/ { suites=$0 }
      /^[[:space:]]*$/ { if (uris != "" && suites ~ /bookworm([[:space:]]|$)/ && uris !~ /security/) { print uris; exit } uris=""; suites="" }
      END { if (uris != "" && suites ~ /bookworm([[:space:]]|$)/ && uris !~ /security/) print uris }
    ' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
  if [ -z "$uri" ]; then
    uri=$(awk '$1=="deb" && $0 !~ /security/ { for (i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' \
      /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -n1)
  fi
  [ -n "$uri" ] || die "no Debian mirror found in /etc/apt/sources.list{,.d/*}"
  echo "$uri"
}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# Build args that carry this machine's pip index and npm registry into builds (empty when unset).
pkg_build_args() {
  local idx extra reg
  idx=${PIP_INDEX_URL:-$(pip3 config get global.index-url 2>/dev/null || true)}
  extra=${PIP_EXTRA_INDEX_URL:-$(pip3 config get global.extra-index-url 2>/dev/null || true)}
  reg=${NPM_CONFIG_REGISTRY:-$( (command -v npm >/dev/null && npm config get registry) 2>/dev/null || true)}
  BUILD_ARGS=(--build-arg "JW_PIP_INDEX_URL=$idx" --build-arg "JW_PIP_EXTRA_INDEX_URL=$extra"
              --build-arg "JW_NPM_REGISTRY=$reg")
  PIP_IDX=$idx PIP_EXTRA=$extra NPM_REG=$reg
}

build_image() {  # $1 tag, $2 dockerfile, rest: extra args; context is the repository
  local tag=$1 file=$2; shift 2
  log "docker build $tag ($file)"
  timeout "${JOBWIRE_BUILD_TIMEOUT:-1200}" "$DOCKER" build --network host --force-rm -q -t "$tag" -f "$file" "$@" "$ROOT" >/dev/null \
    || die "docker build $tag failed (re-run: docker build --network host -f $file ...)"
}

cmd_bases() {
  [ "$BASES" = standin ] || { log "JOBWIRE_BASES=$BASES: no stand-ins needed"; return 0; }
  if ! have_image jobwire-standin/rootfs:bookworm; then
    local mirror dir
    mirror=$(debian_mirror)
    dir=$(mktemp -d /var/tmp/jobwire-rootfs.XXXXXX)
    log "debootstrap --variant=minbase bookworm (mirror from this machine's apt sources)"
    timeout 900 debootstrap --variant=minbase bookworm "$dir" "$mirror" >"$STATE/debootstrap.log" 2>&1 \
      || { tail -n 20 "$STATE/debootstrap.log" >&2; rm -rf "$dir"; die "debootstrap failed (log: $STATE/debootstrap.log)"; }
    mkdir -p "$dir/usr/local/share/ca-certificates"
    cp -a /usr/local/share/ca-certificates/. "$dir/usr/local/share/ca-certificates/" 2>/dev/null || true
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
    tar -C "$dir" -c . | docker import -c 'CMD ["bash"]' - jobwire-standin/rootfs:bookworm >/dev/null \
      || die "docker import of the root file system failed"
    rm -rf "$dir"
  fi
  # Built every time: unchanged Dockerfiles are cache hits (seconds), changed ones take effect.
  local name
  for name in debian python node redis; do
    build_image "jobwire-standin/$name:bookworm" "docker/standin/$name.Dockerfile"
  done
}

# -- the project's images -------------------------------------------------------------------------

cmd_build() {
  pkg_build_args
  build_image "$IMG_PY" docker/python.Dockerfile --build-arg "BASE=$PY_BASE" "${BUILD_ARGS[@]}"
  build_image "$IMG_NODE" docker/node.Dockerfile --build-arg "BASE=$NODE_BASE" "${BUILD_ARGS[@]}"
  build_image "$IMG_C" docker/c.Dockerfile --build-arg "BASE=$DEBIAN_BASE"
  build_image "$IMG_CONF" docker/conformance.Dockerfile --build-arg "BASE=$PY_BASE" "${BUILD_ARGS[@]}"
  # Earlier builds of these images, now untagged (only images carrying the project's label).
  docker image prune -f --filter label=org.jobwire.image >/dev/null 2>&1 || true
}

compose_env() {
  export JOBWIRE_PYTHON_BASE=$PY_BASE JOBWIRE_NODE_BASE=$NODE_BASE JOBWIRE_DEBIAN_BASE=$DEBIAN_BASE
  export JOBWIRE_REDIS_IMAGE=$REDIS_IMAGE
}

cmd_compose() {
  compose_env
  docker-compose -f "$ROOT/docker-compose.yml" --project-directory "$ROOT" "$@"
}

# -- the test -------------------------------------------------------------------------------------

cmd_clean() {  # every container a run of this script, or of jobwire-conformance --image, labelled
  local ids
  [ -n "$DOCKER" ] || { log "no docker client here: no containers to remove"; return 0; }
  ids=$( { docker ps -aq --filter "label=org.jobwire.containers"
           docker ps -aq --filter "label=org.jobwire.conformance.worker"; } 2>/dev/null | sort -u || true)
  [ -z "$ids" ] || { log "removing containers: $(echo $ids)"; docker rm -f $ids >/dev/null || true; }
}

# The tests' Python: the repository's venv (make setup) with the Docker SDK of docker/requirements.txt.
test_python() {
  local py=$ROOT/.venv/bin/python
  [ -x "$py" ] || die "no $ROOT/.venv: run make setup first (make test-containers does)"
  if ! cmp -s docker/requirements.txt "$ROOT/.venv/.docker-requirements.installed" 2>/dev/null \
     || ! "$py" -c 'import docker' 2>/dev/null; then
    log "pip install -r docker/requirements.txt (the Docker SDK for Python) into .venv"
    "$py" -m pip install -q -r docker/requirements.txt || die "pip install -r docker/requirements.txt failed"
    cp docker/requirements.txt "$ROOT/.venv/.docker-requirements.installed"
  fi
  "$py" -c 'import jobwire_conformance.image' 2>/dev/null \
    || "$py" -m pip install -q --no-deps -e conformance >/dev/null 2>&1 || die "pip install -e conformance failed"
  PY=$py
}

cleanup_test() {
  local rc=$?
  cmd_clean
  if [ -n "${STARTED_ENGINE:-}" ] && [ "${JOBWIRE_KEEP_ENGINE:-0}" != 1 ]; then cmd_stop_engine; fi
  exit "$rc"
}

# The images, then docker/tests (pytest, the engine through the Docker SDK): the no-docker script
# test, docker-compose, the 3 x 3 matrix across containers, the conformance suite against each
# worker image, and the fresh-machine test. Extra arguments go to pytest (e.g. -k matrix).
cmd_test_inner() {
  local t0=$SECONDS rc=0
  need_root
  if ! engine_up; then cmd_engine; STARTED_ENGINE=1; else install_packages; fi
  # A dockerd left by an earlier, killed run of this script is ours to stop as well.
  our_dockerd_pid >/dev/null && STARTED_ENGINE=1
  trap cleanup_test EXIT
  trap 'exit 143' TERM INT HUP
  cmd_clean
  cmd_bases
  cmd_build
  test_python
  log "images ready after $((SECONDS - t0)) s"
  compose_env
  export JOBWIRE_CONTAINERS_RUN_ID=$RUN_ID JOBWIRE_CONTAINERS_STATE=$STATE JOBWIRE_BASES=$BASES
  export JOBWIRE_IMAGE_PYTHON=$IMG_PY JOBWIRE_IMAGE_NODE=$IMG_NODE JOBWIRE_IMAGE_C=$IMG_C
  export JOBWIRE_IMAGE_CONFORMANCE=$IMG_CONF JOBWIRE_STANDIN_DEBIAN=$DEBIAN_BASE
  pkg_build_args
  export JW_PIP_INDEX_URL=$PIP_IDX JW_PIP_EXTRA_INDEX_URL=$PIP_EXTRA JW_NPM_REGISTRY=$NPM_REG
  "$PY" -m pytest -q -p no:cacheprovider -o addopts= --tb=short --rootdir docker/tests docker/tests -rA "$@" || rc=$?
  log "done in $((SECONDS - t0)) s"
  echo "containers: pytest docker/tests exit $rc"  # the closing line CI reads
  return "$rc"
}

cmd_test() {
  # Bounded in time: the whole test runs under timeout(1).
  if [ -z "${JOBWIRE_CONTAINERS_INNER:-}" ]; then
    JOBWIRE_CONTAINERS_INNER=1 exec timeout --foreground -k 30 "${JOBWIRE_CONTAINERS_TIMEOUT:-2700}" bash "$0" test "$@"
  fi
  mkdir -p "$STATE"
  cmd_test_inner "$@"
}

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
