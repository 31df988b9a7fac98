#!/usr/bin/env bash
# Build BuildKit's buildkitd and buildctl from the Go module proxy into a per-version cache:
#   $HOME/.cache/farm/buildkit-v<version>/bin/{buildkitd,buildctl}
# Exits at once when both binaries are already there (warm machine). Also makes sure `runc`
# (the OCI worker's runtime, Debian package) is installed.
#
# `go install github.com/moby/buildkit/cmd/buildkitd@vX` is refused because BuildKit's go.mod
# carries exclude/replace directives, so we build from a throwaway tools module instead.
#
# Environment: BUILDKIT_VERSION (default v0.23.2), FARM_CACHE_DIR (default $HOME/.cache/farm),
# GOTOOLCHAIN (default local).
set -euo pipefail

version="${BUILDKIT_VERSION:-v0.23.2}"
cache_dir="${FARM_CACHE_DIR:-$HOME/.cache/farm}"
bin_dir="$cache_dir/buildkit-$version/bin"

ensure_runc() {
    if command -v runc >/dev/null 2>&1 || [ -x /usr/sbin/runc ]; then
        return 0
    fi
    echo "install-buildkit: installing runc (apt-get)" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq runc
}

ensure_runc

warm() { [ -x "$bin_dir/buildkitd" ] && [ -x "$bin_dir/buildctl" ]; }

if warm; then
    echo "install-buildkit: $bin_dir already has buildkitd and buildctl"
    exit 0
fi

# One build at a time per version (the stack and a test fixture may both ask for it).
mkdir -p "$cache_dir"
exec 9>"$cache_dir/.buildkit-$version.lock"
flock 9
if warm; then
    echo "install-buildkit: $bin_dir was built by a concurrent run"
    exit 0
fi

command -v go >/dev/null 2>&1 || { echo "install-buildkit: go is not installed" >&2; exit 1; }

export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$bin_dir"

start=$(date +%s)
echo "install-buildkit: building buildkit $version with $(go version) in $work" >&2
cd "$work"
go mod init farmtools >/dev/null 2>&1
go get "github.com/moby/buildkit@$version"
# A tools file pins both commands as imports so `go mod tidy` keeps every dependency they need.
cat > tools.go <<'EOF'
//go:build tools

package tools

import (
	_ "github.com/moby/buildkit/cmd/buildctl"
	_ "github.com/moby/buildkit/cmd/buildkitd"
)
EOF
go mod tidy
ldflags="-s -w -X github.com/moby/buildkit/version.Version=$version -X github.com/moby/buildkit/version.Package=github.com/moby/buildkit"
# Build into temporary names and move into place, so a half-built binary never looks "warm".
go build -trimpath -ldflags "$ldflags" -o "$bin_dir/.buildctl.tmp" github.com/moby/buildkit/cmd/buildctl
go build -trimpath -ldflags "$ldflags" -o "$bin_dir/.buildkitd.tmp" github.com/moby/buildkit/cmd/buildkitd
mv -f "$bin_dir/.buildctl.tmp" "$bin_dir/buildctl"
mv -f "$bin_dir/.buildkitd.tmp" "$bin_dir/buildkitd"

echo "install-buildkit: built $bin_dir/{buildkitd,buildctl} in $(( $(date +%s) - start ))s" >&2
"$bin_dir/buildctl" --version
