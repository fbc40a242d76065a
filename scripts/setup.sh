#!/usr/bin/env bash
# Installs everything jobwire's demo and tests need on a fresh Debian 12 machine, as root.
# Safe to run twice: each step checks before it installs.
set -euo pipefail
cd "$(dirname "$0")/.."

# socat + openssl: the TLS tests (a throwaway CA; socat is the TLS terminator in front of the C worker,
# whose Debian hiredis 0.14 has no TLS); libmd-dev: SHA-256 for the C worker's recurring-fire job ids;
# and make lint checks the shell scripts with the shellcheck package.
apt_packages=(redis-server redis-tools libhiredis-dev libjansson-dev pkg-config gcc make valgrind chromium socat openssl libmd-dev
              shellcheck)
# Python (with venv) and Node (with npm) from Debian only where none is usable yet: a machine may
# have its own builds (e.g. pyenv's Python, Node 20 from another repository), left as they are.
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || apt_packages+=(python3 python3-venv)
{ command -v node && command -v npm; } >/dev/null 2>&1 || apt_packages+=(nodejs npm)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The venv: the runtime lock and the test/packaging lock (python/README.md says how they are made),
# then jobwire and jobwire-conformance editable, built with the locked setuptools (no download).
locks=(python/requirements.lock python/requirements-dev.lock)
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! cat "${locks[@]}" | cmp -s - .venv/.requirements.installed 2>/dev/null \
   || ! .venv/bin/python -c 'import jobwire' 2>/dev/null \
   || { [ -f conformance/pyproject.toml ] && [ ! -x .venv/bin/jobwire-conformance ]; }; then
  .venv/bin/pip install -q "$(grep -E '^pip==' python/requirements-dev.lock)"
  .venv/bin/pip install -q -r python/requirements.lock -r python/requirements-dev.lock
  .venv/bin/pip install -q --no-deps --no-build-isolation -e python
  if [ -f conformance/pyproject.toml ]; then .venv/bin/pip install -q --no-deps --no-build-isolation -e conformance; fi
  cat "${locks[@]}" >.venv/.requirements.installed
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
