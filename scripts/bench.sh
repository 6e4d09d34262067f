#!/usr/bin/env bash
# Benchmarks against a real 3-host cluster on loopback (release binaries, fsync on), using
# `quantix bench`. Prints one line per measurement and keeps the JSON in $OUT.
#   scripts/bench.sh               all benchmarks
# Environment: BENCH_SECONDS (default 10), QUANTIX_DEMO_DIR (default /tmp/quantix-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
export QUANTIX_DEMO_DIR="${QUANTIX_DEMO_DIR:-/tmp/quantix-bench}"
SECS="${BENCH_SECONDS:-10}"
Q=target/release/quantix
OUT="$QUANTIX_DEMO_DIR/results"
[ -x "$Q" ] || { echo "build first: cargo build --release --bins" >&2; exit 1; }

# The demo's client certificate, kept with the demo (not in the user's CLI config).
export QUANTIX_CONFIG_DIR="$QUANTIX_DEMO_DIR/cli-config"
scripts/demo.sh >/dev/null
trap 'scripts/demo.sh --stop >/dev/null 2>&1 || true' EXIT
export QUANTIX_CA="$QUANTIX_CONFIG_DIR/remotes/demo/ca.crt"
export QUANTIX_CERT="$QUANTIX_CONFIG_DIR/remotes/demo/client.crt"
export QUANTIX_KEY="$QUANTIX_CONFIG_DIR/remotes/demo/client.key"
mkdir -p "$OUT"
E1=https://127.0.0.1:7401 E2=https://127.0.0.1:7402 E3=https://127.0.0.1:7403

leader() { "$Q" --endpoint "$E1" cluster status -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader"])'; }
follower_endpoint() {
  local l; l=$(leader)
  for i in 1 2 3; do [ "host$i" != "$l" ] && { echo "https://127.0.0.1:740$i"; return; }; done
}
run() { # name, args...
  local name=$1; shift
  "$Q" --endpoint "$E1" "$@" -o json > "$OUT/$name.json"
  python3 - "$name" "$OUT/$name.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[2]))
print(f"{sys.argv[1]:<28} {d['ops_per_sec']:>9.0f} ops/s  p50 {d['p50_ms']:.2f} ms  p99 {d['p99_ms']:.2f} ms  "
      f"max {d['max_ms']:.1f} ms  errors {d['errors']}  longest gap {d['max_gap_ms']:.0f} ms")
PY
}

echo "3-host loopback cluster, release build, fsync on; ${SECS}s per run"
run write-64-clients bench write --clients 64 --duration "${SECS}s" --endpoints "$E1,$E2,$E3"
run write-1-client bench write --clients 1 --duration "${SECS}s"
F=$(follower_endpoint)
"$Q" --endpoint "$F" bench read --clients 1 --duration "${SECS}s" --consistency linearizable -o json > "$OUT/read-follower-linearizable.json"
"$Q" --endpoint "$F" bench read --clients 1 --duration "${SECS}s" --consistency stale -o json > "$OUT/read-follower-stale.json"
for f in read-follower-linearizable read-follower-stale; do
  python3 - "$f" "$OUT/$f.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[2]))
print(f"{sys.argv[1]:<28} {d['ops_per_sec']:>9.0f} ops/s  p50 {d['p50_ms']:.3f} ms  p99 {d['p99_ms']:.3f} ms")
PY
done

# Failover: one writer per host keeps writing; the leader is SIGKILLed in the middle. The
# longest gap between two committed writes is the time from the kill to the next commit.
for round in $(seq "${FAILOVER_ROUNDS:-5}"); do
  L=$(leader)
  "$Q" --endpoint "$E1" bench write --clients 3 --duration 6s --endpoints "$E1,$E2,$E3" -o json > "$OUT/failover-$round.json" &
  BENCH=$!
  sleep 2
  kill -9 "$(cat "$QUANTIX_DEMO_DIR/$L/pid")"
  wait "$BENCH" || true
  python3 - "$round" "$L" "$OUT/failover-$round.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[3]))
print(f"failover round {sys.argv[1]} (killed {sys.argv[2]}): leader SIGKILL -> next commit <= {d['max_gap_ms']:.0f} ms")
PY
  # Bring the killed host back with its data and wait until it is a member again.
  i=${L#host}
  nohup target/release/quantixd --config "$QUANTIX_DEMO_DIR/$L/quantixd.toml" >> "$QUANTIX_DEMO_DIR/$L/quantixd.log" 2>&1 &
  echo $! > "$QUANTIX_DEMO_DIR/$L/pid"
  for _ in $(seq 100); do
    "$Q" --endpoint "https://127.0.0.1:740$i" cluster status >/dev/null 2>&1 && break; sleep 0.1
  done
done
echo "results: $OUT"

# Scheduler: one round placing 10,000 VMs on 1,000 synthetic hosts, committed through Raft.
cargo bench --bench schedule 2>/dev/null | grep -v '^$' | tee "$OUT/schedule.txt"
