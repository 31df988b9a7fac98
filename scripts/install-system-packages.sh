#!/bin/sh
# Install the Debian packages the local farm stack runs, only those whose binary is missing.
# Idempotent: a machine that has everything runs no apt-get at all. Same table as
# farm/stack/_packages.py (Stack.up() does the equivalent itself).
set -eu

PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
export PATH

missing=""
need() {  # need BINARY PACKAGE
    if ! command -v "$1" >/dev/null 2>&1; then
        case " $missing " in *" $2 "*) ;; *) missing="$missing $2" ;; esac
    fi
}

static_busybox() {  # a busybox that runs in an empty rootfs: no ELF interpreter
    for b in /bin/busybox /usr/bin/busybox; do
        [ -x "$b" ] || continue
        # dynamically linked executables name their loader (PT_INTERP) near the start of the file
        if ! head -c 4096 "$b" | grep -q 'ld-linux'; then
            return 0
        fi
    done
    return 1
}

need redis-server redis-server
need docker-registry docker-registry
need dockerd docker.io
need containerd containerd
need runc runc
need rsync rsync
static_busybox || missing="$missing busybox-static"

if [ -z "$missing" ]; then
    echo "system packages: all present"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages:$missing; run this script as root" >&2
    exit 1
fi

echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# Keep maintainer scripts from starting system redis/registry/dockerd (a system dockerd would add a
# bridge and iptables rules): a temporary policy-rc.d that says no, unless the machine has one.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# temporary, written by install-system-packages.sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT INT TERM
fi
apt-get update
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends $missing
