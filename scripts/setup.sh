#!/usr/bin/env bash
# Install what Quantix needs to build and test on Debian 12 (bookworm).
#
# Usage: scripts/setup.sh [--web] [--libvirtd]
#   (no flag)   build/test packages (protoc, libvirt, QEMU, ISO tools) + cargo-nextest
#   --web       also chromium and chromium-driver (browser tests), and `npm ci` in web/
#               (the dashboard's packages, from the npm registry) when web/node_modules is
#               missing or older than web/package-lock.json
#   --libvirtd  also start virtlogd and libvirtd (no systemd) and wait for qemu:///system
#
# Idempotent: when everything is present it only runs a few dpkg-query calls.
set -euo pipefail

WEB=0
START_LIBVIRTD=0
for arg in "$@"; do
    case "$arg" in
        --web) WEB=1 ;;
        --libvirtd) START_LIBVIRTD=1 ;;
        -h | --help)
            sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "setup: unknown argument: $arg (try --help)" >&2
            exit 2
            ;;
    esac
done

say() { echo "setup: $*"; }
die() {
    echo "setup: ERROR: $*" >&2
    exit 1
}

# Fail early, with a clear message, when root is needed but cannot be had.
need_root() {
    if [[ $EUID -ne 0 ]] && ! command -v sudo >/dev/null 2>&1; then
        die "need root to $1 (not root and sudo is not installed)"
    fi
}

# Run a command as root: directly when root, else through sudo.
as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    else
        sudo "$@"
    fi
}

installed() {
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" == installed ]]
}

# ---------------------------------------------------------------- packages
PACKAGES=(
    protobuf-compiler
    pkg-config
    libvirt-dev
    libvirt-daemon
    libvirt-daemon-driver-qemu
    libvirt-daemon-system
    libvirt-clients
    genisoimage
    xorriso
    libxml2-utils # xmllint, which virt-xml-validate runs (domain XML tests)
    procps # pgrep, for --libvirtd (not in minimal Debian images)
    nfs-common # mount.nfs: hosts mount NFS pools
    nfs-kernel-server # exportfs, rpc.nfsd: the NFS test serves an export on loopback
)
if [[ $WEB -eq 1 ]]; then
    PACKAGES+=(chromium chromium-driver)
fi

command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this script supports Debian 12 only"

missing=()
for p in "${PACKAGES[@]}"; do
    installed "$p" || missing+=("$p")
done

# QEMU: bookworm's qemu-system-x86 7.2 conflicts with the backported qemu-utils 10
# (it Breaks qemu-system-common << 8.0), so pin qemu-utils to bookworm and allow the downgrade.
qemu_args=()
if ! installed qemu-system-x86 || ! installed qemu-utils; then
    qemu_args=(--allow-downgrades qemu-utils/bookworm qemu-system-x86)
fi

if [[ ${#missing[@]} -gt 0 || ${#qemu_args[@]} -gt 0 ]]; then
    need_root "install packages: ${missing[*]} ${qemu_args[*]}"
    # apt/dpkg chatter goes to a log file, shown only when a step fails.
    apt_log="${TMPDIR:-/tmp}/quantix-setup-apt.log"
    : >"$apt_log"
    apt() {
        if ! as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get -o DPkg::Lock::Timeout=300 -y -q "$@" >>"$apt_log" 2>&1; then
            tail -n 40 "$apt_log" >&2
            die "apt-get $1 failed (full output: $apt_log)"
        fi
    }
    say "apt-get update"
    apt update
    say "apt-get install ${missing[*]} ${qemu_args[*]}"
    apt install --no-install-recommends "${missing[@]}" "${qemu_args[@]}"
else
    say "Debian packages already installed"
fi

# Sanity checks (cheap): tools the build and the tests call.
qemu-img --version >/dev/null 2>&1 || die "qemu-img does not run after install"
qemu-system-x86_64 --version >/dev/null 2>&1 || die "qemu-system-x86_64 does not run after install"
command -v protoc >/dev/null 2>&1 || die "protoc not found after install"
pkg-config --exists libvirt || die "pkg-config cannot find libvirt after install"
if [[ $WEB -eq 1 ]]; then
    command -v chromium >/dev/null 2>&1 || die "chromium not found after install"
fi

# ---------------------------------------------------------------- cargo-nextest
if command -v cargo-nextest >/dev/null 2>&1; then
    say "cargo-nextest present"
else
    command -v cargo >/dev/null 2>&1 || die "cargo not found: install the Rust toolchain (rustup) first"
    say "cargo install cargo-nextest --locked"
    cargo install cargo-nextest --locked
fi

# ---------------------------------------------------------------- web (dashboard)
if [[ $WEB -eq 1 ]]; then
    ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    command -v npm >/dev/null 2>&1 || die "npm not found: install Node.js 20 or newer (with npm) for the dashboard"
    if [[ ! -d $ROOT/web/node_modules || $ROOT/web/package-lock.json -nt $ROOT/web/node_modules/.package-lock.json ]]; then
        say "npm ci in web/"
        (cd "$ROOT/web" && npm ci --no-audit --no-fund)
    else
        say "web/node_modules up to date"
    fi
fi

# ---------------------------------------------------------------- libvirtd
start_libvirtd() {
    need_root "start libvirtd"
    # What udev does on a normal Debian host: /dev/kvm for group kvm. Without it libvirtd
    # probes QEMU with /dev/kvm usable, then finds it unusable as libvirt-qemu, throws the
    # probe away and probes again on every define (each define then takes minutes).
    if [[ -c /dev/kvm ]] && getent group kvm >/dev/null &&
        [[ "$(stat -c '%G %a' /dev/kvm)" != "kvm 660" ]]; then
        say "giving /dev/kvm to group kvm (mode 0660), as udev would"
        as_root chgrp kvm /dev/kvm
        as_root chmod 0660 /dev/kvm
    fi
    if pgrep -x virtlogd >/dev/null; then
        say "virtlogd already running"
    else
        say "starting virtlogd"
        as_root virtlogd -d
    fi
    if pgrep -x libvirtd >/dev/null; then
        say "libvirtd already running"
    else
        # Without systemd, libvirtd's default log output goes nowhere once daemonized;
        # keep errors in a file so a failed start can be diagnosed.
        local outputs="${LIBVIRT_LOG_OUTPUTS:-3:file:/var/log/libvirt/libvirtd.log}"
        say "starting libvirtd (log: ${outputs#*:file:})"
        as_root mkdir -p /var/log/libvirt
        as_root env LIBVIRT_LOG_OUTPUTS="$outputs" libvirtd -d
    fi
    local deadline=$((SECONDS + 30))
    until as_root virsh -c qemu:///system version >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            as_root virsh -c qemu:///system version >&2 || true
            tail -n 20 /var/log/libvirt/libvirtd.log >&2 2>/dev/null || true
            die "libvirtd did not answer on qemu:///system within 30 s"
        fi
        sleep 0.5
    done
    say "libvirtd answers on qemu:///system"
}

if [[ $START_LIBVIRTD -eq 1 ]]; then
    start_libvirtd
fi

say "done"
