#!/usr/bin/env bash
# The conformance suite (conformance/README.md) against every implementation of this repository,
# plus the cross-language matrix; then the suite's own tests (vector self-check, broken workers,
# the mutation sample). Reports: reports/conformance.json and reports/conformance.xml (JUnit).
# Each run starts its own redis-server on a free loopback port (the cluster run: six of them). Exit status non-zero when any MUST
# test fails; with CI=true also when an implementation or a test was skipped (the runner and the
# pytest hooks enforce it: nothing is skipped silently, nothing is retried until it passes).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"

if [ ! -x .venv/bin/jobwire-conformance ]; then
  .venv/bin/pip install -q --no-deps -e conformance
fi

impls=(--impl python --impl python-inline)
if [ "${CI:-}" = true ]; then
  impls+=(--impl node --impl node-inline --impl c --impl node-gateway)  # in CI every implementation must be there: never skip silently
else
  [ -d examples-node/node_modules ] && impls+=(--impl node --impl node-inline)
  [ -d examples-node/node_modules/@grpc/grpc-js ] && impls+=(--impl node-gateway)
  [ -x examples-c/jobwire-worker ] && impls+=(--impl c)
fi

mkdir -p reports
status=0
# Each part ends with its elapsed seconds (scripts/test.sh prints the stage's total).
took() { echo "== conformance $1: $((SECONDS - $2)) s"; }

t0=$SECONDS
echo "== conformance: ${impls[*]} + matrix"
jobwire-conformance "${impls[@]}" --matrix --jobs "${CONFORMANCE_JOBS:-4}" \
  --json reports/conformance.json --junit reports/conformance.xml || status=$?
took "one Redis" "$t0"

# The same suite on a Redis Cluster (3 masters, 3 replicas, six redis-server processes on
# loopback ports): Python, Node and C and the matrix, in one run (~2-3 min on 2 cores; the groups
# that need a private single redis-server are reported not applicable).
cluster_impls=(--impl python)
if [ "${CI:-}" = true ]; then
  cluster_impls+=(--impl node --impl c)
else
  [ -d examples-node/node_modules ] && cluster_impls+=(--impl node)
  [ -x examples-c/jobwire-worker ] && cluster_impls+=(--impl c)
fi
t0=$SECONDS
echo "== conformance on a Redis Cluster: ${cluster_impls[*]} + matrix"
jobwire-conformance --cluster "${cluster_impls[@]}" --matrix --no-figures --jobs "${CONFORMANCE_JOBS:-4}" \
  --json reports/conformance-cluster.json --junit reports/conformance-cluster.xml || status=$?
took "on a Redis Cluster" "$t0"

t0=$SECONDS
echo "== conformance self-check, broken workers and the mutation sample"
jobwire-conformance --check-vectors || status=1
# Four processes (pytest-xdist, worksteal): the self-check's tests wait on the suite's timers and
# barely use the CPU (about 70 s of CPU in a 250 s serial run).
python -m pytest -q -p no:cacheprovider -n 4 --dist worksteal conformance/tests || status=1
took self-check "$t0"

exit "$status"
