#!/usr/bin/env bash
# The 100,000-VM benchmark: a 3-host loopback cluster (release build, fsync on) loaded with
# VM records through the API, then VM get and list latency, each daemon's RSS and the size
# of its data directory (state.redb, log.redb, snapshot.bin).
#   scripts/bench-vms.sh [COUNT]     default 100000
set -euo pipefail
cd "$(dirname "$0")/.."
export QUANTIX_DEMO_DIR="${QUANTIX_DEMO_DIR:-/tmp/quantix-bench}"
COUNT="${1:-100000}"
Q=target/release/quantix
[ -x "$Q" ] || { echo "build first: cargo build --release --bins" >&2; exit 1; }
# The demo's client certificate, kept with the demo (not in the user's CLI config).
export QUANTIX_CONFIG_DIR="$QUANTIX_DEMO_DIR/cli-config"
scripts/demo.sh >/dev/null
trap 'scripts/demo.sh --stop >/dev/null 2>&1 || true' EXIT
export QUANTIX_CA="$QUANTIX_CONFIG_DIR/remotes/demo/ca.crt"
export QUANTIX_CERT="$QUANTIX_CONFIG_DIR/remotes/demo/client.crt"
export QUANTIX_KEY="$QUANTIX_CONFIG_DIR/remotes/demo/client.key"

rss() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$(cat "$QUANTIX_DEMO_DIR/$1/pid")/status"; }
disk() { du -sm "$QUANTIX_DEMO_DIR/$1/data" | cut -f1; }
report() {
  for h in host1 host2 host3; do
    echo "  $h: RSS $(rss $h) MiB, data dir $(disk $h) MiB ($(ls -s --block-size=M "$QUANTIX_DEMO_DIR/$h/data" | tail -n +2 | tr '\n' ' '))"
  done
}
echo "before loading:"; report
"$Q" --endpoint https://127.0.0.1:7401 bench vms --count "$COUNT" --clients 64 --reads 5s
echo "after loading $COUNT VMs:"; report
