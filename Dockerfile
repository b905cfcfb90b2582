# One image per Tansu service, all from this file (docker-compose.yml builds the five):
#
#   docker build --build-arg SERVICE=identity --build-arg PROBE_URL=http://127.0.0.1:7001/health/ready .
#
# SERVICE is the binary's name without `tansu-`: identity, gateway, database, storage, dashboard.
# The binaries come from one of two stages, chosen by BINARIES:
# - `build` (default): compiled here on the official Rust image. The cargo registry and the target
#   directory are cache mounts, so dependencies compile once and a rebuild compiles only what
#   changed; the five images share the stage.
# - `prebuilt`: taken from `dist/` (`tansu-<service>` files built on the host, e.g.
#   `cargo build --release --bins` on Debian bookworm), for machines that cannot pull the Rust
#   image (CI: dev/tests/compose.rs).
ARG BINARIES=build

FROM docker.io/library/rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bins \
      -p tansu-identity -p tansu-gateway -p tansu-database -p tansu-storage -p tansu-dashboard \
    && mkdir -p /out \
    && cp target/release/tansu-identity target/release/tansu-gateway target/release/tansu-database \
          target/release/tansu-storage target/release/tansu-dashboard /out/

FROM scratch AS prebuilt
ARG SERVICE
COPY dist/tansu-${SERVICE} /out/

FROM ${BINARIES} AS binaries

FROM docker.io/library/debian:bookworm-slim
# CA certificates: the services' HTTPS clients (external identity providers, S3, the dashboard's
# issuer) trust the system's roots. One layer, shared by the five images.
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates >/dev/null \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 10001 --user-group --home-dir /var/lib/tansu --create-home --shell /usr/sbin/nologin tansu
ARG SERVICE
# What the health check asks (`tansu-<service> --probe`): the service's readiness on its own
# listener, the gateway's internal listener.
ARG PROBE_URL
COPY --from=binaries /out/tansu-${SERVICE} /usr/local/bin/tansu-${SERVICE}
RUN ln -s tansu-${SERVICE} /usr/local/bin/tansu-service
ENV TANSU_PROBE_URL=${PROBE_URL}
# State (SQLite files, keys, objects with the local backend) lives here: a named volume in the
# compose file. Configuration comes from TANSU_CONFIG, `TANSU_<SECTION>__<KEY>` and
# `TANSU_<SECTION>__<KEY>__FILE` (secrets), never from the image.
WORKDIR /var/lib/tansu
USER 10001:10001
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/tansu-service", "--probe"]
ENTRYPOINT ["/usr/local/bin/tansu-service"]
