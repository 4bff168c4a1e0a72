# syntax=docker/dockerfile:1
#
# engagement-monitor container image.
#
#   docker build -t engagement-monitor .
#   docker run --rm -p 9898:9898 engagement-monitor run --brokers host:9092
#
# Build on Debian 12 (bookworm), run on distroless cc-debian12 (also Debian
# 12), so the C libraries the binary links against are the same release.
#
# Native dependencies of rdkafka (features ssl, zstd, libz, tokio):
#   - librdkafka is compiled from source by rdkafka-sys and linked
#     statically; zstd is compiled by zstd-sys and linked statically.
#   - OpenSSL (`ssl`, not `ssl-vendored`) is linked dynamically:
#     libssl.so.3 and libcrypto.so.3. distroless cc-debian12 ships them
#     (its base layer is libc6 + libssl3, plus libgcc-s1/libstdc++6), as
#     Debian packages, so image scanners see them and rebuilding on a newer
#     base picks up OpenSSL security fixes.
#   - zlib (`libz`) would link dynamically to the build stage's libz.so.1,
#     which cc-debian12 does NOT ship (only debian13 added zlib1g).
#     LIBZ_SYS_STATIC=1 makes libz-sys compile zlib and link it statically
#     instead, without changing Cargo.toml.
# The ldd check at the end of the build stage fails the build if the binary
# ever needs a library the runtime image does not have (e.g. after someone
# enables the gssapi or curl feature), instead of failing at container
# start with "error while loading shared libraries".
#
# (The alternative runtime, debian:bookworm-slim + apt-get install libssl3
# ca-certificates + a non-root user, works too but adds a shell and a
# package manager for no benefit to this binary.)

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build

RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config libssl-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*

ENV LIBZ_SYS_STATIC=1 \
    CARGO_TERM_COLOR=never

WORKDIR /src

# 1. Dependencies only, in their own layer: rebuilt only when Cargo.toml,
#    Cargo.lock or the benches change, not on every source edit (librdkafka
#    alone takes minutes). Stubs stand in for the library and the binary;
#    benches/ is copied because Cargo.toml's [[bench]] must exist for the
#    manifest to load (cargo build does not compile it).
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
RUN mkdir -p src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && cargo build --release --locked \
 && rm -rf src

# 2. The crate itself. COPY keeps the files' original modification times,
#    which are older than the stub build above: without the touch, cargo
#    would consider the crate fresh and ship the stub binary.
COPY src ./src
COPY config ./config
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked \
 && mkdir -p /out/state \
 && cp target/release/engagement-monitor /out/engagement-monitor \
 && chown 65532:65532 /out/state \
 && ldd /out/engagement-monitor \
 && if ldd /out/engagement-monitor \
      | grep -vE 'linux-vdso\.so|ld-linux|/lib(c|m|dl|rt|pthread|gcc_s|stdc\+\+|ssl|crypto)\.so'; then \
      echo 'the binary needs a shared library that distroless/cc-debian12 lacks (see above)' >&2; \
      exit 1; \
    fi \
 && /out/engagement-monitor --version

FROM gcr.io/distroless/cc-debian12:nonroot

COPY --from=build /out/engagement-monitor /usr/local/bin/engagement-monitor
# Checkpoint directory (state.dir), owned by the runtime user so that a
# fresh Docker named volume mounted here inherits a writable owner. The
# image does not turn checkpoints on: set ENGAGEMENT_MONITOR_STATE_DIR=
# /var/lib/engagement-monitor (or state.dir in the config file) and mount a
# volume. On Kubernetes, fsGroup 65532 makes the PVC writable.
COPY --from=build --chown=65532:65532 /out/state/ /var/lib/engagement-monitor/

# nonroot: uid/gid 65532, numeric so Kubernetes' runAsNonRoot can verify it.
USER 65532:65532

EXPOSE 9898

ENTRYPOINT ["/usr/local/bin/engagement-monitor"]
# The SPEC default listen address, 127.0.0.1:9898, is unreachable from
# Prometheus and from kubelet probes inside a container; listen on all
# interfaces. A flag wins over the config file and the environment, so to
# set http.listen elsewhere, override the command (e.g. `run --config ...`).
CMD ["run", "--listen", "0.0.0.0:9898"]
