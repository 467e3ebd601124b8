#!/usr/bin/env bash
# Builds the Dockerfile in a real Docker engine and runs scenarios in the
# image. No image registry is reachable here, so the base images the
# Dockerfile names are made locally: a debootstrap'd Debian (runtime) and
# the same plus compilers and the host's Rust toolchain (build stage).
#
# The build-stage stand-in also carries what the host has already built:
# the crate sources (CARGO_HOME/registry) and the compiled dependencies of
# `cargo build --release --bin lanspread-checker` (a target dir). So the
# Dockerfile's own `cargo build` compiles only this crate, offline; on a
# fresh machine it would otherwise compile every crate again (13-36 min
# measured here). `.ci/run` runs this after `cargo test --release`, which
# builds those dependencies.
#
# Idempotent: base images that exist are reused. Needs root, cargo on the
# host and a running dockerd. Usage: bash .ci/docker-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
phase_start=$start
phase() {
  local now
  now=$(date +%s)
  echo "   ($1: $((now - phase_start)) s)"
  phase_start=$now
}

RUSTC_VV=$(rustc -vV)
RUST_KEY=$(printf '%s' "$RUSTC_VV" | sha256sum | cut -c1-12)
RUN_BASE=lanspread-base:bookworm
BUILD_BASE=lanspread-rust:bookworm-$RUST_KEY
DEPS_REPO=lanspread-rust-deps
IMAGE=lanspread-checker:test
CACHE=${LANSPREAD_DOCKER_CACHE:-/var/tmp/lanspread-docker}
# Where cargo keeps crate sources on the host. A registry crate's build is
# fingerprinted by the absolute path of its sources, so the stand-in keeps
# them at the same path. (A target dir can move: cargo rewrites the paths
# its build scripts printed.)
CARGO_HOME_DIR=$(realpath -m "${CARGO_HOME:-$HOME/.cargo}")
TARGET_DIR=$(realpath -m "${CARGO_TARGET_DIR:-target}")
# The stand-in's target dir (the Dockerfile honours CARGO_TARGET_DIR).
IMAGE_TARGET=/var/cache/lanspread-target
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

# A vendor/ folder would switch the image build to vendored sources (the
# Dockerfile's offline path for users), at other paths: every crate would
# be compiled again.
if [ -e vendor ]; then
  echo "vendor/ is in the build context: the image build would compile every crate" \
    "from it instead of reusing the host's; move it away (older versions of this" \
    "script made it)" >&2
  exit 1
fi

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
  phase "runtime base"
fi
if ! docker image inspect "$BUILD_BASE" >/dev/null 2>&1; then
  # Debian's rustc (1.63) is too old for edition 2024: copy the host's
  # toolchain (without its docs) into the stand-in. Its tag names the
  # toolchain, whose version the compiled dependencies depend on.
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
ENV PATH=/usr/local/rust/bin:\$PATH
EOF
  echo "== build-stage base with $(rustc --version)"
  docker build --network host -q -t "$BUILD_BASE" "$ctx" >/dev/null
  rm -rf "$ctx"
  phase "build-stage base"
fi

# 2. The host's compiled dependencies, put into a stand-in of their own
# (tagged by what they depend on: manifest, lock file, toolchain).
echo "== host: cargo build --release --locked --bin lanspread-checker"
cargo build --release --locked --bin lanspread-checker
phase "host build"
DEPS_KEY=$( {
  cat Cargo.toml Cargo.lock
  echo "$RUSTC_VV"
  echo "$CARGO_HOME_DIR"
} | sha256sum | cut -c1-12)
DEPS_BASE=$DEPS_REPO:$DEPS_KEY
if ! docker image inspect "$DEPS_BASE" >/dev/null 2>&1; then
  echo "== build-stage base with the host's compiled dependencies"
  # Dependencies only: this crate's own files (lanspread_checker-*,
  # lanspread-checker-*, its test binaries) stay out, so the image build
  # compiles it from the context.
  (
    cd "$TARGET_DIR/release"
    find deps -type f \( -name 'lib*' -o -name '*.d' \) ! -name '*lanspread_checker-*'
    find build .fingerprint -mindepth 1 -maxdepth 1 ! -name 'lanspread-checker-*'
  ) >"$CACHE/deps.list"
  cid=$(docker create "$BUILD_BASE" true)
  tar -C / -c "${CARGO_HOME_DIR#/}/registry" | docker cp - "$cid:/"
  tar -C "$TARGET_DIR" -c --transform "s,^,${IMAGE_TARGET#/}/," -T <(sed 's,^,release/,' "$CACHE/deps.list") \
    | docker cp - "$cid:/"
  docker commit \
    -c "ENV CARGO_HOME=$CARGO_HOME_DIR" \
    -c "ENV CARGO_TARGET_DIR=$IMAGE_TARGET" \
    -c "ENV CARGO_NET_OFFLINE=true" \
    "$cid" "$DEPS_BASE" >/dev/null
  docker rm "$cid" >/dev/null
  # Older dependency stand-ins are of no further use.
  docker images --format '{{.Repository}}:{{.Tag}}' "$DEPS_REPO" | grep -vx "$DEPS_BASE" \
    | xargs -r docker rmi >/dev/null || true
  phase "dependency stand-in ($(docker image inspect -f '{{.Size}}' "$DEPS_BASE" | awk '{printf "%d MiB", $1/1048576}'))"
fi

# 3. The Dockerfile, unchanged, on those bases.
echo "== docker build"
if ! docker build --network host -t "$IMAGE" \
  --build-arg BUILD_IMAGE="$DEPS_BASE" --build-arg RUN_IMAGE="$RUN_BASE" . \
  >"$CACHE/docker-build.log" 2>&1; then
  tail -n 40 "$CACHE/docker-build.log"
  exit 1
fi
# cargo colours its output even there: drop the escapes first.
compiled=$(sed 's/\x1b\[[0-9;]*m//g' "$CACHE/docker-build.log" | grep -oE 'Compiling [^ ]+ v[^ ]+' \
  | cut -d' ' -f2 | sort -u || true)
echo "compiled in the image: ${compiled:-nothing (cached layer)}" | tr '\n' ' '
echo
if [ -n "$compiled" ] && [ "$compiled" != lanspread-checker ]; then
  echo "WARNING: the image build compiled dependencies again (the host's were not reused;" \
    "see $CACHE/docker-build.log)" >&2
fi
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
echo "image $IMAGE: $((size / 1024 / 1024)) MiB"
phase "image build"

# 4. Scenarios in containers.
run() {
  local name="lanspread-test-$$-${#containers[@]}"
  containers+=("$name")
  echo "== docker run $*"
  docker run --name "$name" "$@"
}
run "$IMAGE" -s scenarios/s15_skew.lua
phase "s15"
# The network lab inside a container: namespaces (NET_ADMIN, SYS_ADMIN for
# the /run/netns mounts), TUN devices, and a writable /proc/sys (each host
# sets its sysctls; Docker mounts /proc/sys read-only otherwise).
LAN=(--cap-add NET_ADMIN --cap-add SYS_ADMIN --security-opt systempaths=unconfined --device /dev/net/tun)
run "${LAN[@]}" "$IMAGE" -s scenarios/s75_address_order.lua
phase "s75"

echo "docker test passed in $(($(date +%s) - start)) s"
# The plain summary line CI tools read: the two scenario runs above.
echo "container: 2 passed, 0 failed"
