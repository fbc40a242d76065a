#!/usr/bin/env bash
# Every test of the repository, in order of speed. Each suite starts its own redis-server on a
# free loopback port. Called by `make test` (after setup) and so by .ci/run. Each stage ends with
# a line `== NAME: N s`, and the run with the total, so every CI log shows where the time goes.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"

T0=$SECONDS
TIMES=()

# One stage: its title, the command, then its elapsed seconds (also when it fails: set -e stops
# the run after the line is printed). The summary at the end repeats every stage's time.
stage() {
  local name=$1 title=$2 t0=$SECONDS rc=0
  shift 2
  echo "== $name${title:+ ($title)}"
  "$@" || rc=$?
  TIMES+=("$name $((SECONDS - t0)) s")
  echo "== $name: $((SECONDS - t0)) s$( ((rc == 0)) || echo " (exit $rc)")"
  return "$rc"
}

summary() {
  local rc=$?
  echo "== stage times: ${TIMES[*]/%/;} total $((SECONDS - T0)) s"
  exit "$rc"
}
trap summary EXIT

stage lint "ruff, mypy, ESLint, C -pedantic -Werror, shellcheck" bash scripts/lint.sh

if [ -d spec/proto ]; then
  stage proto-lint "" bash scripts/lint-proto.sh
fi

# Three pytest processes (pytest-xdist; each has its own session redis-server): most of the suite
# waits on workers and timers, so a third process uses the time the two cores would idle.
stage python "" python -m pytest -q -n 3 --dist worksteal python/tests

if [ -f examples-node/package.json ]; then
  stage node "" bash -c 'cd examples-node && npm test'
fi

if [ -f examples-c/Makefile ]; then
  stage c "" make -C examples-c test
fi

stage packaging "build every package, install each outside the checkout, run it there" \
  python -m pytest -q -p no:cacheprovider tests/packaging

if [ -f scripts/chaos.py ]; then
  stage chaos "short form: 2,000 jobs a round" python scripts/chaos.py --ci
fi

if [ -f scripts/soak.py ]; then
  stage soak "short form: 20,000 jobs, RSS flat after warm-up" python scripts/soak.py --ci
fi

if [ -f bench/run.py ]; then
  stage bench "quick: a few thousand jobs, 1 round; every peer installed and run, figures not asserted" \
    python bench/run.py --quick
fi

if [ -f scripts/conformance.sh ]; then
  stage conformance "" bash scripts/conformance.sh
fi

if [ -f scripts/containers.sh ]; then
  stage containers "" bash scripts/containers.sh test
fi
