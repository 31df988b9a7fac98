#!/usr/bin/env bash
# Build a real Kubernetes control plane and node from the Go module proxy into per-version caches:
#   $HOME/.cache/farm/kubernetes-<version>/bin/{kube-apiserver,kube-controller-manager,kube-scheduler,kubelet}
#   $HOME/.cache/farm/kubernetes-<version>/bin/pause   (the node's sandbox program; see below)
#   $HOME/.cache/farm/etcd-<version>/bin/etcd
# Exits at once when a cache holds its binaries and its stamp file (warm machine).
#
# `go install k8s.io/kubernetes/cmd/...@vX` is refused: kubernetes' go.mod points its staging
# modules (k8s.io/api, k8s.io/client-go, ...) at ./staging/... . A throwaway module (in a temp dir,
# never in the repo) requires k8s.io/kubernetes and replaces each staging module, as listed in the
# downloaded kubernetes .mod file, with its published v0.<minor>.<patch>. All kubernetes commands
# are built by ONE `go build -o dir/ pkg...` so the packages they share compile once.
# `pause` is a tiny static program of our own (kubernetes' is C, built outside Go modules): the
# process that holds a pod sandbox's namespaces; it reaps orphans and exits on SIGINT/SIGTERM.
#
# Environment: KUBERNETES_VERSION (default v1.35.4), ETCD_VERSION (default v3.6.16),
# FARM_CACHE_DIR (default $HOME/.cache/farm), GOTOOLCHAIN (default local).
set -euo pipefail

k8s_version="${KUBERNETES_VERSION:-v1.35.4}"
etcd_version="${ETCD_VERSION:-v3.6.16}"
cache_dir="${FARM_CACHE_DIR:-$HOME/.cache/farm}"
k8s_dir="$cache_dir/kubernetes-$k8s_version"
etcd_dir="$cache_dir/etcd-$etcd_version"
k8s_cmds=(kube-apiserver kube-controller-manager kube-scheduler kubelet)

log() { echo "install-kubernetes: $*" >&2; }

k8s_warm() {
    [ -f "$k8s_dir/.stamp" ] || return 1
    local c
    for c in "${k8s_cmds[@]}"; do [ -x "$k8s_dir/bin/$c" ] || return 1; done
}
etcd_warm() { [ -f "$etcd_dir/.stamp" ] && [ -x "$etcd_dir/bin/etcd" ]; }
pause_warm() { [ -x "$k8s_dir/bin/pause" ]; }

if k8s_warm && etcd_warm && pause_warm; then
    log "$k8s_dir and $etcd_dir are already built"
    exit 0
fi

# One build at a time (the stack and a test fixture may both ask for it).
mkdir -p "$cache_dir"
exec 9>"$cache_dir/.kubernetes-$k8s_version.lock"
flock 9
if k8s_warm && etcd_warm && pause_warm; then
    log "built by a concurrent run"
    exit 0
fi

command -v go >/dev/null 2>&1 || PATH="$PATH:/usr/local/go/bin"  # the toolchain's usual home
command -v go >/dev/null 2>&1 || { log "go is not installed"; exit 1; }
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
total_start=$(date +%s)

stamp() {  # stamp DIR WHAT SECONDS
    printf 'version=%s\ngo=%s\nbuild_seconds=%s\nbuilt=%s\n' \
        "$2" "$(go env GOVERSION)" "$3" "$(date -u +%FT%TZ)" > "$1/.stamp"
}

build_kubernetes() {
    local start mod staging minor patch mod_file ldflags pkgs=() c
    start=$(date +%s)
    mod="$work/kubernetes"
    mkdir -p "$mod"
    cd "$mod"
    log "building kubernetes $k8s_version (${k8s_cmds[*]}) with $(go version) in $mod"
    go mod init farmk8s >/dev/null 2>&1
    mod_file="$(go mod download -json "k8s.io/kubernetes@$k8s_version" | sed -n 's/^\s*"GoMod": "\(.*\)",\?$/\1/p')"
    [ -f "$mod_file" ] || { log "cannot download k8s.io/kubernetes@$k8s_version"; exit 1; }
    minor="$(echo "$k8s_version" | cut -d. -f2)"
    patch="$(echo "$k8s_version" | cut -d. -f3)"
    staging="v0.$minor.$patch"
    {
        echo "require k8s.io/kubernetes $k8s_version"
        echo "replace ("
        grep -E '^\s*k8s\.io/[A-Za-z0-9._/-]+ => \./staging/' "$mod_file" \
            | awk -v v="$staging" '{print "\t" $1 " => " $1 " " v}'
        echo ")"
    } >> go.mod
    log "$(grep -c ' => ' go.mod) staging modules replaced with their $staging releases"
    {
        echo "//go:build tools"
        echo
        echo "package tools"
        echo
        echo "import ("
        for c in "${k8s_cmds[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/$c\""; done
        echo ")"
    } > tools.go
    go mod tidy
    log "kubernetes modules resolved in $(( $(date +%s) - start ))s"
    ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version"
    ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
    ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
    ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version"
    ldflags+=" -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
    for c in "${k8s_cmds[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
    # Build into a temporary directory and move into place, so a half build never looks warm.
    rm -rf "$k8s_dir/.bin.tmp"
    mkdir -p "$k8s_dir/.bin.tmp"
    go build -trimpath -ldflags "$ldflags" -o "$k8s_dir/.bin.tmp/" "${pkgs[@]}"
    rm -rf "$k8s_dir/bin"
    mv "$k8s_dir/.bin.tmp" "$k8s_dir/bin"
    stamp "$k8s_dir" "$k8s_version" "$(( $(date +%s) - start ))"
    log "built $k8s_dir/bin/{${k8s_cmds[*]}} in $(( $(date +%s) - start ))s"
}

build_etcd() {
    local start mod ldflags
    start=$(date +%s)
    mod="$work/etcd"
    mkdir -p "$mod"
    cd "$mod"
    log "building etcd $etcd_version in $mod"
    go mod init farmetcd >/dev/null 2>&1
    # The etcd server module's main package is the etcd binary (server/main.go).
    go get "go.etcd.io/etcd/server/v3@$etcd_version"
    printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go
    go mod tidy
    ldflags="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$etcd_version"
    rm -rf "$etcd_dir/.bin.tmp"
    mkdir -p "$etcd_dir/.bin.tmp"
    go build -trimpath -ldflags "$ldflags" -o "$etcd_dir/.bin.tmp/etcd" go.etcd.io/etcd/server/v3
    rm -rf "$etcd_dir/bin"
    mv "$etcd_dir/.bin.tmp" "$etcd_dir/bin"
    stamp "$etcd_dir" "$etcd_version" "$(( $(date +%s) - start ))"
    log "built $etcd_dir/bin/etcd in $(( $(date +%s) - start ))s"
}

build_pause() {
    local mod="$work/pause"
    mkdir -p "$mod"
    cd "$mod"
    go mod init farmpause >/dev/null 2>&1
    cat > main.go <<'GO'
// pause holds a pod sandbox's namespaces: it sleeps, reaps orphaned children, exits on INT/TERM.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if os.Getpid() != 1 && len(os.Args) > 1 && os.Args[1] == "-v" {
		os.Stdout.WriteString("farm pause\n")
		return
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
	}
}
GO
    mkdir -p "$k8s_dir/bin"
    go build -trimpath -ldflags "-s -w" -o "$k8s_dir/bin/.pause.tmp" .
    mv -f "$k8s_dir/bin/.pause.tmp" "$k8s_dir/bin/pause"
    log "built $k8s_dir/bin/pause"
}

k8s_warm || build_kubernetes
etcd_warm || build_etcd
pause_warm || build_pause
log "done in $(( $(date +%s) - total_start ))s"
"$k8s_dir/bin/kube-apiserver" --version
"$etcd_dir/bin/etcd" --version | head -1
