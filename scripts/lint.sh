#!/usr/bin/env bash
# make lint: every static check of the repository, each reported, the exit status 1 if any fails.
# Run first by scripts/test.sh (so CI fails fast on a finding). Configs: ruff.toml and mypy.ini at
# the root, examples-node/eslint.config.js, the WARN flags of examples-c/Makefile.
#   ruff check + ruff format --check  every Python file (the tree is formatted by `ruff format .`)
#   mypy                              the Python packages jobwire and jobwire_conformance
#   eslint                            the Node package, its tests and tools
#   C                                 every source under -Wall -Wextra -pedantic, -Werror (WERROR=1)
#   shell scripts                     shellcheck, the parts they source followed (-x)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
export PATH="$PWD/.venv/bin:$PATH"

failed=()
step() {  # step NAME COMMAND...: run it, remember a failure, go on with the next check
  local name=$1
  shift
  echo "== lint: $name"
  "$@" || failed+=("$name")
}

step "ruff check" ruff check .
step "ruff format --check" ruff format --check .
step "mypy" mypy --config-file mypy.ini python/src/jobwire conformance/src/jobwire_conformance
step "eslint" bash -c 'cd examples-node && npx --no-install eslint .'
step "c (-pedantic, WERROR=${WERROR:-1})" make -s -C examples-c lint WERROR="${WERROR:-1}"
mapfile -t shell_scripts < <(find scripts docker .ci -type f \( -name '*.sh' -o -path .ci/run \) | LC_ALL=C sort)
step "shellcheck" shellcheck -x -P SCRIPTDIR "${shell_scripts[@]}"

if ((${#failed[@]})); then
  echo "lint: FAILED: ${failed[*]}"
  exit 1
fi
echo "lint: every check passed"
