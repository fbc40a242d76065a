# Sourced by scripts/containers.sh (never run alone): the container test (docker/tests with pytest) and cleaning up after it.
# It uses the settings and the docker() wrapper containers.sh defines before sourcing it.
# shellcheck shell=bash

cmd_clean() {  # every container a run of this script, or of jobwire-conformance --image, labelled
  local ids=()
  [ -n "$DOCKER" ] || { log "no docker client here: no containers to remove"; return 0; }
  mapfile -t ids < <( { docker ps -aq --filter "label=org.jobwire.containers"
                        docker ps -aq --filter "label=org.jobwire.conformance.worker"; } 2>/dev/null | sort -u || true)
  ((${#ids[@]} == 0)) || { log "removing containers: ${ids[*]}"; docker rm -f "${ids[@]}" >/dev/null || true; }
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
  # One process by default. JOBWIRE_CONTAINERS_PROCS=2 runs the fresh machine beside all the other
  # tests (pytest-xdist --dist loadgroup; the groups are set in docker/tests/conftest.py): measured
  # about 1.5 min faster here, but the image runs then share the CPUs with the fresh machine's
  # install and tests, and 2 of 3 such runs missed a bound (docker/README.md), so CI does not.
  local procs=()
  if [ "${JOBWIRE_CONTAINERS_PROCS:-1}" -gt 1 ]; then procs=(-n "$JOBWIRE_CONTAINERS_PROCS" --dist loadgroup); fi
  "$PY" -m pytest -q -p no:cacheprovider -o addopts= --tb=short --rootdir docker/tests docker/tests -rA \
    "${procs[@]}" "$@" || rc=$?
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

