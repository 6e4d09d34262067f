#!/usr/bin/env bash
# API create → VM running latency (p50/p90/p99/max, VMs/s) with `quantix bench start`, on:
#   (a) the libvirt test driver: the demo cluster (scripts/demo.sh, ports 7401-7403) with a dir
#       pool; 100 PXE VMs with a 1 GiB disk, 8 at a time;
#   (b) real QEMU: 3 hosts on ports 7411-7413 (HTTP 7491-7493), each with its own embedded QEMU
#       driver (qemu:///embed?root=DIR/hostN/qemu, domain type qemu = TCG, default CPU model);
#       20 diskless PXE VMs, 2 at a time.
# Each cluster is stopped afterwards (its directory is kept for the logs).
#
# Usage: scripts/bench-start.sh [test|qemu|all]     default all
# Env:   BENCH_TEST_DIR (default /tmp/quantix-bench-start-test), BENCH_QEMU_DIR (default
#        /tmp/quantix-bench-start-qemu), BENCH_OUTPUT=json for JSON results,
#        BENCH_QEMU_AS_ROOT=0 (see below).
# Build first: cargo build --release --bins
#
# Embedded QEMU on this machine (libvirt 9.0; each host's DIR/hostN/qemu/etc/qemu.conf, which
# is where 9.0 reads it in embed mode, not etc/qemu/qemu.conf):
#   stdio_handler = "file"   guest consoles go to a file, so no virtlogd is needed.
#   user/group = "root"      libvirt probes QEMU's capabilities with CAP_DAC_OVERRIDE, so the
#       probe opens /dev/kvm (0600 root:root here, no udev) and records KVM as enabled; the
#       cache check then tests /dev/kvm as the run user (libvirt-qemu), fails, and throws the
#       capabilities away. Every lookup re-probes (~4 s each), virDomainDefineXML takes minutes
#       and VMs sit in `creating` past the 120 s timeout. Running QEMU as root makes the probe
#       and the check agree. BENCH_QEMU_AS_ROOT=0 leaves it out, to reproduce the failure.
# quantixd writes the same qemu.conf into an embedded root that has none; this script writes
# its own first so the run does not depend on that default and the failure stays reproducible.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
QUANTIXD="$ROOT/target/release/quantixd"
QUANTIX="$ROOT/target/release/quantix"
TEST_DIR="${BENCH_TEST_DIR:-/tmp/quantix-bench-start-test}"
QEMU_DIR="${BENCH_QEMU_DIR:-/tmp/quantix-bench-start-qemu}"
OUTPUT="${BENCH_OUTPUT:-table}"
QEMU_AS_ROOT="${BENCH_QEMU_AS_ROOT:-1}"
WHAT="${1:-all}"
QEMU_GRPC_BASE=7410 # host i: gRPC 7410+i, HTTP 7490+i
QEMU_HTTP_BASE=7490

say() { echo "bench-start: $*"; }
die() {
    echo "bench-start: ERROR: $*" >&2
    exit 1
}

case "$WHAT" in
    test | qemu | all) ;;
    -h | --help)
        sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument: $WHAT (try --help)" ;;
esac
for bin in "$QUANTIXD" "$QUANTIX"; do
    [[ -x $bin ]] || die "$bin not found: run 'cargo build --release --bins'"
done

# Every call here is an administrator's: through the host's socket (port -> its data dir).
q() {
    local port=$1 sock
    shift
    case $port in
        740[1-3]) sock="$TEST_DIR/host${port: -1}/data/quantixd.sock" ;;
        *) sock="$QEMU_DIR/host$((port - QEMU_GRPC_BASE))/data/quantixd.sock" ;;
    esac
    "$QUANTIX" --endpoint "unix://$sock" "$@"
}

toml_str() {
    local s=${1//\\/\\\\}
    s=${s//\"/\\\"}
    printf '"%s"' "$s"
}

alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Wait until `cmd...` succeeds, at most $1 seconds; $2 says what for.
wait_until() {
    local secs=$1 what=$2
    shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "timed out after ${secs}s waiting for $what"
        sleep 0.2
    done
}

# Every member host reports pool $2 reachable (through endpoint port $1).
pool_reached() {
    local json
    json=$(q "$1" -o json pool get "$2") || return 1
    python3 -c '
import json, sys
p = json.load(sys.stdin)
sys.exit(0 if len(p.get("reachable_from") or []) >= 3 else 1)' <<<"$json"
}

RESULTS=()

# ---------------------------------------------------------------- (a) test driver
run_test_driver() {
    say "(a) test driver: starting the demo cluster in $TEST_DIR"
    QUANTIX_DEMO_DIR="$TEST_DIR" QUANTIX_CONFIG_DIR="$TEST_DIR/cli-config" "$ROOT/scripts/demo.sh" >"${TEST_DIR%/}.demo.log" 2>&1 ||
        { cat "${TEST_DIR%/}.demo.log" >&2; die "demo.sh failed"; }
    STOP_TEST=1
    q 7401 pool create bench --type dir --path "$TEST_DIR/pools/bench" >/dev/null ||
        die "cannot create pool bench"
    wait_until 60 "every host to reach pool bench" pool_reached 7401 bench
    say "(a) bench start --count 100 --concurrency 8 --pool bench --disk-size 1GiB"
    local out
    out=$(q 7401 -o "$OUTPUT" bench start --count 100 --concurrency 8 --pool bench \
        --disk-size 1GiB) || { RESULTS+=("test driver: FAILED (see above)"); stop_test; return 1; }
    echo "$out"
    RESULTS+=("test driver (100 VMs, concurrency 8, 1 GiB disk):" "$out")
    stop_test
}

stop_test() {
    [[ -n ${STOP_TEST:-} ]] || return 0
    QUANTIX_DEMO_DIR="$TEST_DIR" "$ROOT/scripts/demo.sh" --stop >/dev/null 2>&1 || true
    STOP_TEST=
}

# ---------------------------------------------------------------- (b) real QEMU
# The same pattern as demo.sh, with an embedded QEMU driver per host instead of test:///.
start_qemu_cluster() {
    local i h port pid
    stop_qemu
    mkdir -p "$QEMU_DIR"
    QEMU_DIR="$(cd "$QEMU_DIR" && pwd)"
    for i in 1 2 3; do
        rm -rf -- "${QEMU_DIR:?}/host$i"
        for port in $((QEMU_GRPC_BASE + i)) $((QEMU_HTTP_BASE + i)); do
            port_open "$port" && die "port $port is already in use by another process"
        done
    done
    for i in 1 2 3; do
        h="$QEMU_DIR/host$i"
        mkdir -p "$h/data" "$h/qemu/etc"
        # Why each line: see the header.
        {
            echo 'stdio_handler = "file"'
            if [[ $QEMU_AS_ROOT == 1 ]]; then
                echo 'user = "root"'
                echo 'group = "root"'
            fi
        } >"$h/qemu/etc/qemu.conf"
        cat >"$h/quantixd.toml" <<EOF
name = $(toml_str "host$i")
data_dir = $(toml_str "$h/data")
grpc_addr = "127.0.0.1:$((QEMU_GRPC_BASE + i))"
http_addr = "127.0.0.1:$((QEMU_HTTP_BASE + i))"

[hypervisor]
uri = $(toml_str "qemu:///embed?root=$h/qemu")
domain_type = "qemu"
cpu_mode = "default"
EOF
        nohup "$QUANTIXD" --config "$h/quantixd.toml" >"$h/quantixd.log" 2>&1 </dev/null &
        echo $! >"$h/pid"
        say "(b) started host$i (pid $!, gRPC 127.0.0.1:$((QEMU_GRPC_BASE + i)))"
    done
    STOP_QEMU=1
    for i in 1 2 3; do
        h="$QEMU_DIR/host$i"
        port=$((QEMU_GRPC_BASE + i))
        pid=$(<"$h/pid")
        local deadline=$((SECONDS + 20))
        until port_open "$port" && [[ -S $h/data/quantixd.sock ]]; do
            if ! alive "$pid" || ((SECONDS >= deadline)); then
                tail -n 30 "$h/quantixd.log" >&2 || true
                die "host$i (pid $pid) does not accept gRPC on port $port"
            fi
            sleep 0.2
        done
    done
    local p1=$((QEMU_GRPC_BASE + 1)) token
    q "$p1" cluster bootstrap >/dev/null || die "bootstrap failed"
    for i in 2 3; do
        wait_until 15 "a join token from host1" q "$p1" cluster token
        token=$(q "$p1" cluster token) || die "no join token"
        q $((QEMU_GRPC_BASE + i)) cluster join "$token" >/dev/null || die "host$i cannot join"
    done
    q "$p1" cluster status || die "no cluster status"
}

# SIGTERM the recorded daemons, wait up to 10 s, then SIGKILL. Leftover QEMU guests of an
# embedded driver die with their daemon's process group only if libvirt kills them, so any
# qemu-system process whose command line names this directory is killed too.
stop_qemu() {
    local pidfile pid pids=()
    for pidfile in "$QEMU_DIR"/host*/pid; do
        [[ -f $pidfile ]] || continue
        pid=$(<"$pidfile")
        if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" &&
            [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == quantixd ]]; then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
        rm -f "$pidfile"
    done
    local deadline=$((SECONDS + 10))
    for pid in "${pids[@]}"; do
        while alive "$pid"; do
            if ((SECONDS >= deadline)); then
                kill -KILL "$pid" 2>/dev/null || true
                break
            fi
            sleep 0.2
        done
    done
    for pidfile in "$QEMU_DIR"/host*/qemu/run/qemu/*.pid; do
        [[ -f $pidfile ]] || continue
        pid=$(<"$pidfile")
        if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" &&
            grep -qF "$QEMU_DIR" "/proc/$pid/cmdline" 2>/dev/null; then
            say "(b) killing leftover guest pid $pid"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    STOP_QEMU=
}

run_qemu() {
    say "(b) real QEMU: starting 3 hosts with embedded QEMU drivers in $QEMU_DIR"
    start_qemu_cluster
    say "(b) bench start --count 20 --concurrency 2 --disk-size 0"
    local out
    out=$(q $((QEMU_GRPC_BASE + 1)) -o "$OUTPUT" bench start --count 20 --concurrency 2 \
        --disk-size 0) || {
        RESULTS+=("real QEMU: FAILED; daemon logs: $QEMU_DIR/host{1,2,3}/quantixd.log")
        stop_qemu
        return 1
    }
    echo "$out"
    RESULTS+=("real QEMU (20 VMs, concurrency 2, no disk, TCG):" "$out")
    stop_qemu
}

cleanup() {
    stop_test
    [[ -z ${STOP_QEMU:-} ]] || stop_qemu
}
trap cleanup EXIT

status=0
if [[ $WHAT == test || $WHAT == all ]]; then
    run_test_driver || status=1
fi
if [[ $WHAT == qemu || $WHAT == all ]]; then
    run_qemu || status=1
fi
echo
echo "==== bench start results"
printf '%s\n' "${RESULTS[@]}"
exit "$status"
