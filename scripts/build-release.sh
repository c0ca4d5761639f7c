#!/usr/bin/env bash
# Builds the four binaries of the container image: release mode, the Swift runtime and Foundation
# linked statically (the image then needs only glibc, libstdc++, libgcc_s and zlib), debug info
# stripped. The Dockerfile runs exactly this; it works the same outside Docker.
# Usage: scripts/build-release.sh [OUT_DIR]   (default: .build-static/dist)
# Knobs: SWIFT (default swift), SCRATCH_PATH (default .build-static).
set -euo pipefail
cd "$(dirname "$0")/.."
swift=${SWIFT:-swift}
scratch=${SCRATCH_PATH:-.build-static}
out=${1:-$scratch/dist}
products=(chaperone-proxy chaperone-injector chaperone-collector chaperonectl)
flags=(-c release --static-swift-stdlib --scratch-path "$scratch")
for product in "${products[@]}"; do
    "$swift" build "${flags[@]}" --product "$product"
done
bin=$("$swift" build "${flags[@]}" --show-bin-path)
mkdir -p "$out"
for product in "${products[@]}"; do
    install -m 0755 "$bin/$product" "$out/$product"
    strip --strip-debug "$out/$product"
done
ls -l "${products[@]/#/$out/}"
