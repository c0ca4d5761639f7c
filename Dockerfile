# syntax=docker/dockerfile:1
# One image, four binaries: chaperone-injector, chaperone-proxy (the sidecar), chaperone-collector
# and chaperonectl. Build and publish (README, "Container image"):
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" \
#     -t ghcr.io/chaperone-dev/chaperone:0.1.0 --push .
# The build stage runs scripts/build-release.sh, which works the same outside Docker.

ARG SWIFT_IMAGE=swift:6.3.1-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${SWIFT_IMAGE} AS build
# zlib's headers for the gzip module (the runtime needs only libz.so.1, copied below).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Release build with the Swift runtime and Foundation linked statically, debug info stripped;
# then libz, the one library the binaries need that the runtime image may lack.
RUN --mount=type=cache,target=/src/.build-static \
    scripts/build-release.sh /staging/usr/local/bin \
    && arch_lib="/usr/lib/$(uname -m)-linux-gnu" \
    && mkdir -p "/staging${arch_lib}" \
    && cp -L "${arch_lib}/libz.so.1" "/staging${arch_lib}/libz.so.1"

FROM ${RUNTIME_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="chaperone" \
      org.opencontainers.image.description="Kubernetes-native audit gateway for AI coding agents: injector, sidecar proxy, collector and chaperonectl" \
      org.opencontainers.image.source="https://github.com/chaperone-dev/chaperone" \
      org.opencontainers.image.url="https://github.com/chaperone-dev/chaperone" \
      org.opencontainers.image.documentation="https://github.com/chaperone-dev/chaperone/blob/main/README.md" \
      org.opencontainers.image.vendor="Chaperone" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=build /staging/ /
# distroless "nonroot"; the injector runs the sidecar as its own UID (15080) regardless.
USER 65532:65532
# No entrypoint: the Deployments and the injected sidecar name the binary as `command`, e.g.
#   docker run --rm IMAGE /usr/local/bin/chaperonectl --help
CMD ["/usr/local/bin/chaperone-proxy", "--help"]
