# syntax=docker/dockerfile:1

# Container image of cloudconnexa_exporter.
#   docker build -t cloudconnexa_exporter .
#   docker run --rm -p 9839:9839 cloudconnexa_exporter                      # demo mode
#   docker run --rm -p 9839:9839 -e CLOUDCONNEXA_CLIENT_SECRET_FILE=/run/secrets/cc \
#     cloudconnexa_exporter --cloudconnexa.cloud-id=acme --cloudconnexa.client-id=...

# Build stage: a pinned toolchain on the same Debian release as the runtime image, so the
# binary links against the glibc it runs with. TLS is rustls: nothing to install, no OpenSSL.
FROM rust:1.88-slim-bookworm AS builder
WORKDIR /src
# The git revision for cloudconnexa_exporter_build_info: .git is not in the build context, so
# pass it in: --build-arg CLOUDCONNEXA_BUILD_REVISION="$(git rev-parse --short=12 HEAD)".
ARG CLOUDCONNEXA_BUILD_REVISION=unknown
# The whole workspace: the exporter and the simulator crate (sim/) that serves --demo.
COPY . .
# The cache mounts keep downloaded crates and compiled dependencies between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -D -m 0755 target/release/cloudconnexa_exporter /out/cloudconnexa_exporter

# Runtime stage: glibc and libgcc only, no shell, no package manager; runs as uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="cloudconnexa_exporter" \
      org.opencontainers.image.description="Prometheus exporter for OpenVPN CloudConnexa" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/cloudconnexa_exporter /usr/local/bin/cloudconnexa_exporter
# Numeric, so that Kubernetes runAsNonRoot can verify it (65532 is distroless "nonroot").
USER 65532:65532
EXPOSE 9839
ENTRYPOINT ["/usr/local/bin/cloudconnexa_exporter"]
# Demo mode by default, so `docker run` shows something at once; pass flags to override.
CMD ["--demo", "--web.listen-address=:9839"]
