#!/usr/bin/env bash
# Builds the Dockerfile in a real Docker engine and runs scenarios in the
# image. No image registry is reachable here, so the base images the
# Dockerfile names are made locally: a debootstrap'd Debian (runtime) and
# the same plus compilers and the host's Rust toolchain (build stage).
# Crates are vendored on the host so the image build needs no crate registry.
# Idempotent: base images that exist are reused. Needs root and a running
# dockerd. Usage: bash .ci/docker-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

RUN_BASE=lanspread-base:bookworm
BUILD_BASE=lanspread-rust:bookworm
IMAGE=lanspread-checker:test
CACHE=${LANSPREAD_DOCKER_CACHE:-/var/tmp/lanspread-docker}
mkdir -p "$CACHE"

containers=()
cleanup() {
  for c in "${containers[@]}"; do docker rm -f "$c" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

# The Debian mirror this machine's apt uses (deb822 or one-line sources).
mirror() {
  local m
  m=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' \
    | grep -E '/debian/?$' | head -n1 || true)
  if [ -z "$m" ]; then
    m=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
      | awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)
  fi
  [ -n "$m" ] || { echo "no Debian mirror in /etc/apt/sources.list*" >&2; exit 1; }
  echo "$m"
}

# 1. Base images.
if ! docker image inspect "$RUN_BASE" >/dev/null 2>&1; then
  root="$CACHE/rootfs"
  rm -rf "$root"
  echo "== debootstrap bookworm from $(mirror)"
  debootstrap --variant=minbase bookworm "$root" "$(mirror)" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -n 30 "$CACHE/debootstrap.log"; exit 1; }
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import - "$RUN_BASE" >/dev/null
  rm -rf "$root"
fi
if ! docker image inspect "$BUILD_BASE" >/dev/null 2>&1; then
  # Debian's rustc (1.63) is too old for edition 2024: copy the host's
  # toolchain (without its docs) into the stand-in.
  ctx="$CACHE/build-base"
  rm -rf "$ctx"
  mkdir -p "$ctx"
  sysroot=$(rustc --print sysroot)
  tar -C "$sysroot" --exclude=./share -c . >"$ctx/rust.tar"
  cat >"$ctx/Dockerfile" <<EOF
FROM $RUN_BASE
RUN apt-get update && apt-get install -y --no-install-recommends gcc g++ libc6-dev make \
 && rm -rf /var/lib/apt/lists/*
ADD rust.tar /usr/local/rust/
ENV PATH=/usr/local/rust/bin:\$PATH CARGO_HOME=/usr/local/cargo
EOF
  echo "== build-stage base with $(rustc --version)"
  docker build --network host -q -t "$BUILD_BASE" "$ctx" >/dev/null
  rm -rf "$ctx"
fi

# 2. The Dockerfile, unchanged, on those bases, with vendored crates.
if [ ! -d vendor ] || [ ! -f "$CACHE/vendor.stamp" ] || [ Cargo.lock -nt "$CACHE/vendor.stamp" ]; then
  cargo vendor --locked --quiet vendor >/dev/null
  touch "$CACHE/vendor.stamp"
fi
echo "== docker build"
docker build --network host -q -t "$IMAGE" \
  --build-arg BUILD_IMAGE="$BUILD_BASE" --build-arg RUN_IMAGE="$RUN_BASE" . >/dev/null
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
echo "image $IMAGE: $((size / 1024 / 1024)) MiB"

# 3. Scenarios in containers.
run() {
  local name="lanspread-test-$$-${#containers[@]}"
  containers+=("$name")
  echo "== docker run $*"
  docker run --name "$name" "$@"
}
run "$IMAGE" -s scenarios/s15_skew.lua
# The network lab inside a container: namespaces (NET_ADMIN, SYS_ADMIN for
# the /run/netns mounts), TUN devices, and a writable /proc/sys (each host
# sets its sysctls; Docker mounts /proc/sys read-only otherwise).
LAN=(--cap-add NET_ADMIN --cap-add SYS_ADMIN --security-opt systempaths=unconfined --device /dev/net/tun)
# LEAD: switch this to a `network = "lan"` scenario once one lands, e.g.
#   run "${LAN[@]}" "$IMAGE" -s scenarios/sNN_lan.lua
run "${LAN[@]}" "$IMAGE" bench lab --bulk 64MiB

echo "docker test passed in $(($(date +%s) - start)) s"
