#!/usr/bin/env bash
# Cross-checks bench's system-call accounting against strace, for two models.
#
# For each model: (1) `bench run --accounting separate` counts the server's calls per request over
# its measured window with perf tracepoints; (2) the same server started under `strace -c -f`
# and driven by `bench load` (same connections, duration and CPUs, no warm-up), strace's
# whole-life counts divided by the requests bench load measured (the server's start and stop
# add a few hundred calls, none of them the per-request ones compared here); (3)
# `perf stat -e raw_syscalls:sys_enter,syscalls:sys_enter_<name>...`, which costs a call about
# what bench's own counters do, attached with -p to the server of a `bench run --accounting
# off` for part of its window (requests estimated from that run's rate). Prints the three per
# name and the differences.
#
# strace stops the server at every call (about 100 times slower per call here), so the server
# runs far slower under it: calls whose number depends on timing (epoll_wait, io_uring_enter
# waits, futex) are expected to differ; the calls that move the bytes (recvfrom, sendto, read,
# write) should agree per request.
#
# Usage: scripts/crosscheck-syscalls.sh [MODEL MODEL]   (default: reactor proactor-uring)
# Env: CONNS (50), DURATION (5, seconds), WARMUP (1), SERVER_CPU (0), CLIENT_CPU (1).
# Needs root (perf tracepoints, strace -p); installs strace from Debian's packages if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -ge 1 ]; then models=("$@"); else models=(reactor proactor-uring); fi
CONNS=${CONNS:-50}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}

if ! command -v strace >/dev/null 2>&1; then
  echo "== installing strace"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends strace >/dev/null
fi
if [ ! -d /sys/kernel/tracing/events ]; then
  mount -t tracefs nodev /sys/kernel/tracing
fi
cargo build --release -q
bench=$PWD/target/release/bench
work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for model in "${models[@]}"; do
  echo "== $model: bench run --accounting separate (-c $CONNS, ${WARMUP}s warm-up, ${DURATION}s window)"
  "$bench" run --model "$model" -c "$CONNS" -d "${DURATION}s" --warmup "${WARMUP}s" \
    --server-cpus "$SERVER_CPU" --client-cpus "$CLIENT_CPU" --accounting separate --quiet \
    --out "$work/ours-$model.json" >/dev/null

  echo "== $model: the same under strace -c -f from the server's start, driven by bench load"
  strace -f -c -o "$work/strace-$model.txt" "$bench" serve --model "$model" --cpus "$SERVER_CPU" \
    >"$work/serve.out" 2>"$work/serve.err" &
  strace_pid=$!
  for _ in $(seq 200); do
    grep -q listening "$work/serve.out" 2>/dev/null && break
    sleep 0.05
  done
  server_pid=$(pgrep -P "$strace_pid" | head -1)
  addr=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["listening"])' "$work/serve.out")
  # No warm-up: every request the server answers is one bench load counts (but the few in
  # flight at the end), so the server's whole-life counts divide by them.
  "$bench" load --target "$addr" -c "$CONNS" -d "${DURATION}s" --warmup 0s \
    --cpus "$CLIENT_CPU" --quiet --json "$work/load-$model.json" >/dev/null 2>&1 || true
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$strace_pid" 2>/dev/null || true
  server_pid=""

  echo "== $model: perf stat -p attached to bench run's own server (counting off) mid-window"
  events=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["runs"][0]["syscalls"]; print(",".join(["raw_syscalls:sys_enter"] + ["syscalls:sys_enter_" + n for n in s["by_name"]]))' "$work/ours-$model.json")
  "$bench" run --model "$model" -c "$CONNS" -d "${DURATION}s" --warmup "${WARMUP}s" \
    --server-cpus "$SERVER_CPU" --client-cpus "$CLIENT_CPU" --accounting off --quiet \
    --out "$work/off-$model.json" >/dev/null 2>&1 &
  run_pid=$!
  sleep "$(python3 -c "print($WARMUP + 1)")"
  serve_pid=$(pgrep -f "bench serve --model $model --workload" | head -1)
  perf_s=$(python3 -c "print(max($DURATION - 2, 1))")
  perf stat -x, -o "$work/perf-$model.txt" -e "$events" -p "$serve_pid" -- sleep "$perf_s" \
    2>/dev/null || true
  wait "$run_pid" || true

  python3 - "$model" "$work/ours-$model.json" "$work/load-$model.json" "$work/strace-$model.txt" \
    "$work/off-$model.json" "$work/perf-$model.txt" "$perf_s" <<'EOF'
import json, sys
model, ours_path, load_path, strace_path, off_path, perf_path, perf_s = sys.argv[1:]
# perf stat saw perf_s seconds of the window: the requests in it, at the run's steady rate.
perf_requests = round(json.load(open(off_path))["runs"][0]["throughput_rps"] * float(perf_s))
perf_counts = {}
for line in open(perf_path):
    parts = line.strip().split(",")
    if len(parts) > 2 and parts[0].isdigit():
        event = parts[2]
        name = "total" if event == "raw_syscalls:sys_enter" else event.replace("syscalls:sys_enter_", "")
        perf_counts[name] = int(parts[0])
ours = json.load(open(ours_path))["runs"][0]["syscalls"]
load = json.load(open(load_path))["runs"][0]
requests = load["requests"]
counts = {}
for line in open(strace_path):
    parts = line.split()
    # % time, seconds, usecs/call, calls, [errors], syscall
    if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
        try:
            calls = int(parts[3])
        except ValueError:
            continue
        counts[parts[-1]] = calls
ours_per = ours["by_name_per_request"]
names = sorted(set(ours_per) | set(counts), key=lambda n: -(ours_per.get(n) or 0))
print(f"   {model}: bench (perf, {ours['requests']} requests): {ours['per_request']:.3f} calls/request;"
      f" strace ({requests} requests, whole server life): {sum(counts.values()) / max(requests, 1):.3f}")
print(f"   perf stat -p on bench run's server, counting off (~{perf_requests} requests in {perf_s} s): "
      f"{perf_counts.get('total', 0) / max(perf_requests, 1):.3f} calls/request")
print(f"   {'call':<16} {'bench/req':>10} {'strace/req':>11} {'diff':>8} {'perf/req':>9} {'diff':>8}")
def diff(a, b):
    return f"{(b - a) / a * 100:+.1f}%" if a > 0 else "(0)"
for n in names:
    a = ours_per.get(n) or 0.0
    b = counts.get(n, 0) / max(requests, 1)
    c = perf_counts.get(n, 0) / max(perf_requests, 1)
    if a < 0.001 and b < 0.001 and c < 0.001:
        continue
    pc = f"{c:>9.4f} {diff(a, c):>8}" if n in perf_counts else f"{'-':>9} {'':>8}"
    print(f"   {n:<16} {a:>10.4f} {b:>11.4f} {diff(a, b):>8} {pc}")
EOF
done
