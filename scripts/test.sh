#!/usr/bin/env bash
# Every test of the repository, in order of speed. Each suite starts its own redis-server on a
# free loopback port. Called by `make test` (after setup) and so by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"

echo "== lint (ruff, mypy, ESLint, C -pedantic -Werror, shellcheck)"
bash scripts/lint.sh

if [ -d spec/proto ]; then
  echo "== proto lint"
  bash scripts/lint-proto.sh
fi

echo "== python"
python -m pytest -q python/tests

if [ -f examples-node/package.json ]; then
  echo "== node"
  (cd examples-node && npm test)
fi

if [ -f examples-c/Makefile ]; then
  echo "== c"
  make -C examples-c test
fi

echo "== packaging: build every package, install each outside the checkout, run it there"
python -m pytest -q -p no:cacheprovider tests/packaging

if [ -f scripts/chaos.py ]; then
  echo "== chaos (short form: 2,000 jobs a round)"
  python scripts/chaos.py --ci
fi

if [ -f scripts/soak.py ]; then
  echo "== soak (short form: 20,000 jobs, RSS flat after warm-up)"
  python scripts/soak.py --ci
fi

if [ -f bench/run.py ]; then
  echo "== bench (quick: a few thousand jobs, 1 round; every peer installed and run, figures not asserted)"
  python bench/run.py --quick
fi

if [ -f scripts/conformance.sh ]; then
  echo "== conformance"
  bash scripts/conformance.sh
fi

if [ -f scripts/containers.sh ]; then
  echo "== containers"
  bash scripts/containers.sh test
fi
