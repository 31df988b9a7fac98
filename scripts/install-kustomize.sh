#!/usr/bin/env bash
# Build kustomize (sigs.k8s.io/kustomize/kustomize/v5) from the Go module proxy into a per-version cache:
#   $HOME/.cache/farm/kustomize-<version>/bin/kustomize
# Renders deploy/ (tests/unit/test_deploy_manifests.py). Debian's kubectl carries an old kustomize.
# Exits at once on a warm machine. Environment: KUSTOMIZE_VERSION, FARM_CACHE_DIR, GOTOOLCHAIN.
set -euo pipefail

version="${KUSTOMIZE_VERSION:-v5.7.1}"
cache_dir="${FARM_CACHE_DIR:-$HOME/.cache/farm}"
bin_dir="$cache_dir/kustomize-$version/bin"

warm() { [ -x "$bin_dir/kustomize" ]; }

if warm; then
    echo "install-kustomize: $bin_dir/kustomize is already built"
    exit 0
fi

# One build at a time per version (tests in parallel sessions may all ask for it).
mkdir -p "$cache_dir"
exec 9>"$cache_dir/.kustomize-$version.lock"
flock 9
if warm; then
    echo "install-kustomize: $bin_dir/kustomize was built by a concurrent run"
    exit 0
fi

command -v go >/dev/null 2>&1 || { echo "install-kustomize: go is not installed" >&2; exit 1; }
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

mkdir -p "$bin_dir"
echo "install-kustomize: building kustomize $version with $(go version)" >&2
# go install into a temporary GOBIN, then move into place: a half-built binary never looks warm.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
GOBIN="$tmp" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kustomize/kustomize/v5@$version"
mv -f "$tmp/kustomize" "$bin_dir/kustomize"
echo "install-kustomize: $bin_dir/kustomize"
