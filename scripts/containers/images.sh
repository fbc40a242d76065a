# Sourced by scripts/containers.sh (never run alone): images: the stand-in bases (debootstrap), the project's images, compose.
# It uses the settings and the docker() wrapper containers.sh defines before sourcing it.
# shellcheck shell=bash

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
  # shellcheck disable=SC2034  # read by cmd_test_inner (test.sh), which passes them to the tests
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

