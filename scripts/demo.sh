#!/usr/bin/env bash
# Start a local 3-host Quantix cluster on loopback from the release binaries.
#
# Usage: scripts/demo.sh           (re)start the demo; any previous demo is stopped and wiped
#        scripts/demo.sh --stop    stop the demo daemons, keep their data and logs
#        scripts/demo.sh --clean   stop the demo daemons and remove the demo directory
#
# Demo directory: ${QUANTIX_DEMO_DIR:-/tmp/quantix-demo}. Build first: cargo build --release --bins
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${QUANTIX_DEMO_DIR:-/tmp/quantix-demo}"
QUANTIXD="$ROOT/target/release/quantixd"
QUANTIX="$ROOT/target/release/quantix"
HOSTS=(1 2 3)
# host -> cores / memory (KiB): 8 cores 16 GiB, 16 cores 32 GiB, 4 cores 8 GiB
CORES=([1]=8 [2]=16 [3]=4)
MEMORY_KIB=([1]=16777216 [2]=33554432 [3]=8388608)

say() { echo "demo: $*"; }
die() {
    echo "demo: ERROR: $*" >&2
    exit 1
}

grpc_port() { echo $((7400 + $1)); }
http_port() { echo $((7480 + $1)); }

# A string as a TOML basic string (quotes included).
toml_str() {
    local s=${1//\\/\\\\}
    s=${s//\"/\\\"}
    printf '"%s"' "$s"
}

# Running and not a zombie (this machine's PID 1 reaps orphans only after a while).
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Stop the daemons recorded in $DIR/host*/pid: SIGTERM, wait up to 10 s, then SIGKILL.
stop_daemons() {
    local pids=() pidfile pid
    for pidfile in "$DIR"/host*/pid; do
        [[ -f $pidfile ]] || continue
        pid=$(<"$pidfile")
        # Only signal a live quantixd (the pid may have been reused since).
        if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" &&
            [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == quantixd ]]; then
            say "stopping quantixd pid $pid (${pidfile%/pid})"
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
        rm -f "$pidfile"
    done
    [[ ${#pids[@]} -gt 0 ]] || return 0
    local deadline=$((SECONDS + 10)) left
    while :; do
        left=()
        for pid in "${pids[@]}"; do
            alive "$pid" && left+=("$pid")
        done
        [[ ${#left[@]} -gt 0 ]] || break
        if ((SECONDS >= deadline)); then
            say "SIGKILL ${left[*]} (did not exit within 10 s)"
            kill -KILL "${left[@]}" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
}

case "${1:-}" in
    "") ;;
    --stop)
        stop_daemons
        say "stopped"
        exit 0
        ;;
    --clean)
        stop_daemons
        [[ -n $DIR && $DIR != / ]] || die "refusing to remove '$DIR'"
        rm -rf -- "$DIR"
        say "removed $DIR"
        exit 0
        ;;
    -h | --help)
        sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument: $1 (try --help)" ;;
esac

for bin in "$QUANTIXD" "$QUANTIX"; do
    [[ -x $bin ]] || die "$bin not found: run 'cargo build --release --bins' (or 'make demo')"
done

stop_daemons
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)" # the test:/// URI needs an absolute path
for i in "${HOSTS[@]}"; do
    rm -rf -- "$DIR/host$i"
done

for i in "${HOSTS[@]}"; do
    for port in "$(grpc_port "$i")" "$(http_port "$i")"; do
        port_open "$port" && die "port $port is already in use by another process"
    done
done

# ---------------------------------------------------------------- start daemons
for i in "${HOSTS[@]}"; do
    h="$DIR/host$i"
    mkdir -p "$h/data"
    cat >"$h/host.xml" <<EOF
<node>
  <cpu>
    <nodes>1</nodes>
    <sockets>1</sockets>
    <cores>${CORES[$i]}</cores>
    <threads>1</threads>
    <mhz>2000</mhz>
    <model>i686</model>
    <active>${CORES[$i]}</active>
  </cpu>
  <memory>${MEMORY_KIB[$i]}</memory>
</node>
EOF
    cat >"$h/quantixd.toml" <<EOF
name = $(toml_str "host$i")
data_dir = $(toml_str "$h/data")
grpc_addr = "127.0.0.1:$(grpc_port "$i")"
http_addr = "127.0.0.1:$(http_port "$i")"

[hypervisor]
uri = $(toml_str "test://$h/host.xml")
EOF
    nohup "$QUANTIXD" --config "$h/quantixd.toml" >"$h/quantixd.log" 2>&1 </dev/null &
    echo $! >"$h/pid"
    say "started host$i (pid $!, gRPC 127.0.0.1:$(grpc_port "$i"), HTTP 127.0.0.1:$(http_port "$i"))"
done

for i in "${HOSTS[@]}"; do
    h="$DIR/host$i"
    port=$(grpc_port "$i")
    pid=$(<"$h/pid")
    deadline=$((SECONDS + 20))
    until port_open "$port"; do
        if ! alive "$pid" || ((SECONDS >= deadline)); then
            if alive "$pid"; then
                echo "demo: host$i does not accept TCP on port $port after 20 s; log tail:" >&2
            else
                echo "demo: host$i (pid $pid) exited; log tail:" >&2
            fi
            tail -n 30 "$h/quantixd.log" >&2 || true
            echo "demo: stop the other daemons with: make clean-demo" >&2
            exit 1
        fi
        sleep 0.2
    done
    say "host$i accepts gRPC on 127.0.0.1:$port"
done

# ---------------------------------------------------------------- form the cluster
# Through each host's administrator socket (root on that host), as on real hosts: a host
# that has not joined has no certificate of the cluster, and the TCP port needs one.
q() {
    local i=$1
    shift
    "$QUANTIX" --endpoint "unix://$DIR/host$i/data/quantixd.sock" "$@"
}

for i in "${HOSTS[@]}"; do
    deadline=$((SECONDS + 20))
    until [[ -S $DIR/host$i/data/quantixd.sock ]]; do
        ((SECONDS < deadline)) || die "host$i made no socket in 20 s (see $DIR/host$i/quantixd.log)"
        sleep 0.2
    done
done

# Tokens are one-time; retry only token creation (the leader may still be settling).
new_token() {
    local deadline=$((SECONDS + 15)) token
    until token=$(q 1 cluster token 2>"$DIR/token.err"); do
        if ((SECONDS >= deadline)); then
            cat "$DIR/token.err" >&2
            die "could not get a join token from host1"
        fi
        sleep 0.5
    done
    rm -f "$DIR/token.err"
    printf '%s' "$token"
}

say "bootstrapping the cluster on host1"
q 1 cluster bootstrap
for i in 2 3; do
    say "joining host$i"
    TOKEN=$(new_token)
    q "$i" cluster join "$TOKEN"
done

# ---------------------------------------------------------------- credentials
# A client certificate for this machine's CLI (remote "demo", made the default) and a bearer
# token for the browser.
CONFIG_DIR="${QUANTIX_CONFIG_DIR:-${XDG_CONFIG_HOME:-$HOME/.config}/quantix}"
export QUANTIX_CONFIG_DIR="$CONFIG_DIR"
say "making the CLI's client certificate (remote demo in $CONFIG_DIR)"
q 1 cluster add-client demo >/dev/null
"$QUANTIX" remote use demo >/dev/null
DASHBOARD_TOKEN=$(q 1 cluster add-token dashboard 2>"$DIR/token.info")
FINGERPRINT=$(grep -o 'sha256): [0-9a-f]*' "$DIR/token.info" | cut -d' ' -f2)
rm -f "$DIR/token.info"
(umask 077 && printf '%s\n' "$DASHBOARD_TOKEN" >"$DIR/dashboard.token")
say "cluster status"
"$QUANTIX" cluster status

cat <<EOF

Quantix demo cluster is running (3 hosts on loopback, libvirt test driver). Every connection
is TLS with certificates of the cluster's own CA (sha256 $FINGERPRINT).

The CLI on this machine is set up (remote "demo", now the default remote: a client
certificate in $CONFIG_DIR; 'quantix remote list' / 'quantix remote use NAME' to switch):

  export PATH="$ROOT/target/release:\$PATH"
  quantix whoami
  quantix cluster status
  quantix host list
  quantix pool create local --type dir --path $DIR/pools/local
  quantix folder create /prod
  quantix vm create web1 --pxe --disk-size 10GiB --pool local --folder /prod
  quantix vm list
  quantix events list

Dashboard: https://127.0.0.1:7481/ (any host's HTTP port; followers redirect to the leader).
  The browser warns about the certificate (the cluster's own CA): accept it, then log in
  with this token (also in $DIR/dashboard.token):

  $DASHBOARD_TOKEN

Metrics: curl -sk -H "Authorization: Bearer \$(cat $DIR/dashboard.token)" https://127.0.0.1:7481/metrics
Hosts:   host1 gRPC https://127.0.0.1:7401, HTTPS https://127.0.0.1:7481
         host2 gRPC https://127.0.0.1:7402, HTTPS https://127.0.0.1:7482
         host3 gRPC https://127.0.0.1:7403, HTTPS https://127.0.0.1:7483
Root on a host: quantix --endpoint unix://$DIR/host1/data/quantixd.sock ...
Logs:    $DIR/host{1,2,3}/quantixd.log
Config:  $DIR/host{1,2,3}/quantixd.toml
Stop:    make clean-demo
EOF
