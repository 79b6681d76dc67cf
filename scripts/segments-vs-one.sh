#!/usr/bin/env bash
# One open-loop run driven by one process against the same run split into N segments started at
# one --start-at and merged with `bench merge` (issue 22): RUNS interleaved pairs against one
# `bench serve --model MODEL` on CPU 0, the load on CPU 1 (every segment too). Prints each
# file's achieved rate and p99 corrected and uncorrected.
#
# Usage: scripts/segments-vs-one.sh BENCH OUT_DIR [RUNS] [RATE] [SEGMENTS] [MODEL]
# A result file that exists already is read again, not re-run.
set -euo pipefail
bench=$1 out=$2 runs=${3:-3} rate=${4:-20000} n=${5:-4} model=${6:-reactor}
mkdir -p "$out"
port=7411
"$bench" serve --model "$model" --listen 127.0.0.1:$port --cpus 0 --duration 900s >/dev/null &
server=$!
trap 'kill $server 2>/dev/null; wait 2>/dev/null' EXIT
sleep 1
load=(load --target 127.0.0.1:$port --cpus 1 -c 100 --rate "$rate" -d 10s --warmup 2s --quiet)
for i in $(seq 1 "$runs"); do
  one="$out/one-$i.json"
  [ -e "$one" ] || "$bench" "${load[@]}" --json "$one" >/dev/null
  merged="$out/merged-$i.json"
  if [ ! -e "$merged" ]; then
    start=$(date -u -d '+3 sec' +%FT%TZ)
    pids=()
    for s in $(seq 1 "$n"); do
      "$bench" "${load[@]}" --segment "$s/$n" --start-at "$start" \
        --json "$out/segment-$i-$s.json" >/dev/null 2>&1 &
      pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    "$bench" merge "$out"/segment-"$i"-*.json --out "$merged" >/dev/null
  fi
done
python3 - "$out" "$runs" <<'PY'
import json, sys
out, runs = sys.argv[1], int(sys.argv[2])
print(f"{'file':<16}{'asked':>8}{'req/s':>10}{'rate %':>8}{'p50 µs':>8}{'p99 µs':>8}{'p99 sent':>10}{'busy':>7}")
for i in range(1, runs + 1):
    for name in (f"one-{i}", f"merged-{i}"):
        r = json.load(open(f"{out}/{name}.json"))["runs"][0]
        o = r["open_loop"]
        print(f"{name:<16}{o['requested_rps']:>8.0f}{r['throughput_rps']:>10.1f}"
              f"{r['throughput_rps'] / o['requested_rps'] * 100:>8.2f}{r['latency_us']['p50']:>8.0f}"
              f"{r['latency_us']['p99']:>8.0f}{r['latency_uncorrected_us']['p99']:>10.0f}"
              f"{r['client']['busy_fraction'] * 100:>6.0f}%")
PY
