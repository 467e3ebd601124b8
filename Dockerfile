# lanspread-checker: the peer and the scenario checker in one image.
#   docker build -t lanspread-checker .
#   docker run --rm lanspread-checker -s scenarios/s15_skew.lua
# `network = "lan"` scenarios build a LAN of network namespaces on TUN
# devices: add --cap-add NET_ADMIN --cap-add SYS_ADMIN
# --security-opt systempaths=unconfined --device /dev/net/tun (or
# --privileged). The base images are build args so a machine without a
# registry can supply its own (.ci/docker-test.sh does).
ARG BUILD_IMAGE=rust:1-bookworm
ARG RUN_IMAGE=debian:bookworm-slim

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
# .dockerignore lets in only what the build and the image need.
COPY . .
# A vendor/ folder in the context (cargo vendor) makes the build offline. A
# build image may set CARGO_TARGET_DIR (a warm target dir of its own).
RUN if [ -d vendor ]; then \
      mkdir -p .cargo && printf '%s\n' '[source.crates-io]' 'replace-with = "vendored"' \
        '[source.vendored]' 'directory = "vendor"' >.cargo/config.toml; \
    fi \
 && cargo build --release --locked --bin lanspread-checker \
 && cp "${CARGO_TARGET_DIR:-target}/release/lanspread-checker" /usr/local/bin/

FROM ${RUN_IMAGE}
# iproute2: the network lab configures its namespaces with `ip`.
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/lanspread-checker /usr/local/bin/
WORKDIR /lanspread
COPY scenarios/ scenarios/
COPY fixtures/ fixtures/
COPY redirects/ redirects/
ENTRYPOINT ["lanspread-checker"]
CMD ["--help"]
