#!/usr/bin/env bash
# Installs everything jobwire's demo and tests need on a fresh Debian 12 machine, as root.
# Safe to run twice: each step checks before it installs.
set -euo pipefail
cd "$(dirname "$0")/.."

# socat + openssl: the TLS tests (a throwaway CA; socat is the TLS terminator in front of the C worker,
# whose Debian hiredis 0.14 has no TLS).
apt_packages=(redis-server redis-tools libhiredis-dev libjansson-dev pkg-config gcc make valgrind chromium socat openssl)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! cmp -s python/requirements.txt .venv/.requirements.installed 2>/dev/null \
   || ! .venv/bin/python -c 'import jobwire' 2>/dev/null \
   || { [ -f conformance/pyproject.toml ] && [ ! -x .venv/bin/jobwire-conformance ]; }; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r python/requirements.txt
  .venv/bin/pip install -q --no-deps -e python
  if [ -f conformance/pyproject.toml ]; then .venv/bin/pip install -q --no-deps -e conformance; fi
  cp python/requirements.txt .venv/.requirements.installed
fi

# gRPC stubs for `jobwire gateway`, generated from spec/proto (never committed; see
# python/src/jobwire/gateway/protos.py, which a wheel build calls too).
if [ -d spec/proto ]; then
  .venv/bin/python -m jobwire.gateway.protos >/dev/null
fi

if [ -f examples-node/package-lock.json ]; then
  if [ ! -d examples-node/node_modules ] || [ examples-node/package-lock.json -nt examples-node/node_modules/.package-lock.json ]; then
    (cd examples-node && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi

if [ -f examples-c/Makefile ]; then
  make -s -C examples-c
fi
