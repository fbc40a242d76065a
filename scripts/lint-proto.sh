#!/usr/bin/env bash
# Lints spec/proto with buf (STANDARD + COMMENTS rules: protobuf's style guide), from the npm
# package @bufbuild/buf that examples-node installs as a dev dependency (a registry binary, no
# download at run time).
set -euo pipefail
cd "$(dirname "$0")/.."
buf=examples-node/node_modules/.bin/buf
if [ ! -x "$buf" ]; then
  echo "lint-proto: $buf missing; run make setup" >&2
  exit 1
fi
(cd spec/proto && "../../$buf" lint)
echo "lint-proto: spec/proto clean (buf $("$buf" --version))"
