#!/usr/bin/env bash
# Build the container images of every Sidekick binary from deploy/docker/Dockerfile.
#
#   deploy/build-images.sh                 build all images for this engine's platform, tagged $VERSION
#   deploy/build-images.sh triage notifier build some
#   PUSH=1 deploy/build-images.sh          build for linux/amd64 and linux/arm64, with SBOM and
#                                          provenance attestations, and push
#   DRY_RUN=1 deploy/build-images.sh       print the docker commands only
#
# Environment:
#   REGISTRY  image prefix (default ghcr.io/sidekickhq/sidekick); images are $REGISTRY/<name>:$VERSION
#   VERSION   version stamped into the binaries and used as tag (default: git describe)
#   COMMIT    commit stamped into the binaries (default: git rev-parse HEAD)
#   PLATFORM  platforms to build (default with PUSH: linux/amd64,linux/arm64; without: the
#             engine's own). The Go build stage runs once on the builder's platform and
#             cross-compiles, so no emulation is needed. Several platforms need PUSH (the
#             classic Docker image store keeps one platform per tag).
#   SOURCE_DATE_EPOCH  timestamp of everything in the image (default: the commit's time),
#             so the same commit builds the same image layers
#
# Needs Docker with buildx (Docker 23+ has it). With PUSH, the builder must be
# able to export attestations (`docker buildx create --use` makes a
# docker-container builder that can). Where no engine is reachable the script
# says so and exits 2 without building anything.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL=(ingest-slack ingest-email ingest-github ingest-sentry triage rotation notifier sidekick)
REGISTRY=${REGISTRY:-ghcr.io/sidekickhq/sidekick}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
COMMIT=${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
if [[ -n "${PUSH:-}" ]]; then PLATFORM=${PLATFORM:-linux/amd64,linux/arm64}; fi
DOCKERFILE=deploy/docker/Dockerfile

if [[ $# -gt 0 ]]; then targets=("$@"); else targets=("${ALL[@]}"); fi
for t in "${targets[@]}"; do
  if [[ " ${ALL[*]} " != *" $t "* ]]; then
    echo "build-images: unknown image '$t' (known: ${ALL[*]})" >&2
    exit 1
  fi
done
if [[ "$VERSION" == latest ]]; then
  echo "build-images: refusing the tag 'latest'; set VERSION to a release or commit" >&2
  exit 1
fi

run() {
  echo "+ $*"
  if [[ -z "${DRY_RUN:-}" ]]; then "$@"; fi
}

if [[ -z "${DRY_RUN:-}" ]]; then
  if ! command -v docker >/dev/null 2>&1; then
    echo "build-images: no 'docker' command on this machine: no images were built." >&2
    echo "build-images: install Docker (or run on CI with an engine); DRY_RUN=1 shows the commands." >&2
    exit 2
  fi
  if ! docker info >/dev/null 2>&1; then
    echo "build-images: the docker client is here but no Docker engine answers (docker info failed): no images were built." >&2
    echo "build-images: start dockerd or point DOCKER_HOST at an engine; DRY_RUN=1 shows the commands." >&2
    exit 2
  fi
fi

build=(docker buildx build -f "$DOCKERFILE"
  --build-arg "VERSION=$VERSION" --build-arg "COMMIT=$COMMIT"
  --build-arg "SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH")
if [[ -n "${PLATFORM:-}" ]]; then build+=(--platform "$PLATFORM"); fi
if [[ -n "${PUSH:-}" ]]; then
  # An SBOM (what the image contains) and SLSA provenance (how, from what
  # source) attached to each pushed image.
  build+=(--sbom=true --provenance=mode=max)
  output="type=image,push=true,rewrite-timestamp=true"
else
  output="type=docker,rewrite-timestamp=true"
fi

for t in "${targets[@]}"; do
  image="$REGISTRY/$t:$VERSION"
  run "${build[@]}" --target "$t" --output "$output,name=$image" .
done
echo "build-images: ${#targets[@]} image(s) at $REGISTRY/<name>:$VERSION"
