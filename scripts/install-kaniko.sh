#!/usr/bin/env bash
# Build the Kaniko executor (the maintained chainguard-dev fork) from the Go module proxy and stage
# the root filesystem of an executor image, in a per-version cache:
#   $HOME/.cache/farm/kaniko-<version>/bin/executor      the static binary
#   $HOME/.cache/farm/kaniko-<version>/rootfs/           an executor image's root filesystem:
#       kaniko/executor                       the binary (ENTRYPOINT ["/kaniko/executor"])
#       kaniko/ssl/certs/ca-certificates.crt  Debian's CA bundle (SSL_CERT_DIR=/kaniko/ssl/certs)
#       kaniko/.docker/config.json            "{}"; registry credentials are mounted over it (DOCKER_CONFIG=/kaniko/.docker/)
#       etc/nsswitch.conf                     from kaniko's module (files/nsswitch.conf), so /etc/hosts is used
#       workspace/                            the default build context (WORKDIR /workspace)
#   kaniko/ is mode 0777 as in kaniko's own image. Packing it into an image (docker import with
#   ENTRYPOINT ["/kaniko/executor"], ENV HOME=/root USER=root PATH=/usr/local/bin:/kaniko
#   SSL_CERT_DIR=/kaniko/ssl/certs DOCKER_CONFIG=/kaniko/.docker/) is farm/stack/_kaniko_image.py's job.
# Exits at once when the cache holds the binary, the rootfs and the stamp file (warm machine).
#
# Kaniko's go.mod carries `replace github.com/moby/go-archive => ... v0.1.0`, which a dependent module
# does not inherit, so the throwaway module (a temp dir, never the repo) copies kaniko's replace lines.
#
# Environment: KANIKO_VERSION (default v1.25.16; the proxy serves only some versions and lists none),
# FARM_CACHE_DIR (default $HOME/.cache/farm), GOTOOLCHAIN (default local).
set -euo pipefail

version="${KANIKO_VERSION:-v1.25.16}"
cache_dir="${FARM_CACHE_DIR:-$HOME/.cache/farm}"
dir="$cache_dir/kaniko-$version"
module="github.com/chainguard-dev/kaniko"

log() { echo "install-kaniko: $*" >&2; }

warm() {
    [ -f "$dir/.stamp" ] && [ -x "$dir/bin/executor" ] && [ -x "$dir/rootfs/kaniko/executor" ] \
        && [ -s "$dir/rootfs/kaniko/ssl/certs/ca-certificates.crt" ]
}

if warm; then
    log "$dir already has the executor and its rootfs"
    exit 0
fi

mkdir -p "$cache_dir"
exec 9>"$cache_dir/.kaniko-$version.lock"
flock 9
if warm; then
    log "built by a concurrent run"
    exit 0
fi

ca_bundle=/etc/ssl/certs/ca-certificates.crt
if [ ! -s "$ca_bundle" ]; then
    log "installing ca-certificates (apt-get)"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends ca-certificates
fi

command -v go >/dev/null 2>&1 || PATH="$PATH:/usr/local/go/bin"  # the toolchain's usual home
command -v go >/dev/null 2>&1 || { log "go is not installed"; exit 1; }
command -v python3 >/dev/null 2>&1 || { log "python3 is needed to read kaniko's go.mod"; exit 1; }
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
cd "$work"
log "building $module/cmd/executor $version with $(go version) in $work"
go mod init farmkaniko >/dev/null 2>&1
info="$(go mod download -json "$module@$version")" || { log "the proxy refused $module@$version: $info"; exit 1; }
src_dir="$(printf '%s' "$info" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
# Copy kaniko's module replacements (not its local-path ones) into the throwaway module.
go mod edit -json "$src_dir/go.mod" | python3 -c '
import json, sys
for r in json.load(sys.stdin).get("Replace") or []:
    new = r["New"]
    if new.get("Version"):
        old = r["Old"]["Path"] + ("@" + r["Old"]["Version"] if r["Old"].get("Version") else "")
        print(old + "=" + new["Path"] + "@" + new["Version"])
' | while read -r rep; do
    log "replace ${rep/=/ => }"
    go mod edit -replace "$rep"
done
go mod edit -require "$module@$version"
printf '//go:build tools\n\npackage tools\n\nimport _ "%s/cmd/executor"\n' "$module" > tools.go
go mod tidy
log "modules resolved in $(( $(date +%s) - start ))s"

rm -rf "$dir/.tmp"
mkdir -p "$dir/.tmp/bin"
go build -trimpath -ldflags "-s -w -X $module/pkg/version.version=$version" \
    -o "$dir/.tmp/bin/executor" "$module/cmd/executor"

root="$dir/.tmp/rootfs"
mkdir -p "$root/kaniko/ssl/certs" "$root/kaniko/.docker" "$root/etc" "$root/workspace"
chmod 0777 "$root/kaniko"
cp "$dir/.tmp/bin/executor" "$root/kaniko/executor"
cp "$ca_bundle" "$root/kaniko/ssl/certs/ca-certificates.crt"
echo '{}' > "$root/kaniko/.docker/config.json"
install -m 0644 "$src_dir/files/nsswitch.conf" "$root/etc/nsswitch.conf"

rm -rf "$dir/bin" "$dir/rootfs"
mv "$dir/.tmp/bin" "$dir/bin"
mv "$dir/.tmp/rootfs" "$dir/rootfs"
rmdir "$dir/.tmp"
printf 'version=%s\ngo=%s\nbuild_seconds=%s\nbuilt=%s\n' \
    "$version" "$(go env GOVERSION)" "$(( $(date +%s) - start ))" "$(date -u +%FT%TZ)" > "$dir/.stamp"
log "built $dir/bin/executor and $dir/rootfs in $(( $(date +%s) - start ))s"
"$dir/bin/executor" version
