# Sourced by scripts/containers.sh (never run alone): the Docker engine: packages, dockerd start and stop.
# It uses the settings and the docker() wrapper containers.sh defines before sourcing it.
# shellcheck shell=bash

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
  local driver=$1 pid
  mkdir -p "$STATE"
  log "starting dockerd (storage driver $driver, no bridge, no iptables)"
  setsid dockerd --bridge=none --iptables=false --ip-masq=false --ip6tables=false \
    --storage-driver="$driver" --pidfile="$STATE/dockerd.own.pid" \
    >"$STATE/dockerd.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$PIDFILE"
  for _ in $(seq 1 60); do
    engine_up && { echo "$driver" >"$STATE/storage-driver"; log "dockerd pid $pid is up"; return 0; }
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  log "dockerd ($driver) did not come up; last lines of $STATE/dockerd.log:"
  tail -n 15 "$STATE/dockerd.log" >&2 || true
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
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
  local pid
  if pid=$(our_dockerd_pid); then
    log "stopping dockerd pid $pid (started by this script)"
    kill -TERM "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && { log "dockerd pid $pid still running after 30 s; SIGKILL"; kill -KILL "$pid"; }
    rm -f "$PIDFILE"
  else
    log "no dockerd started by this script is running"
  fi
}

