#!/usr/bin/env bash
# How sensitive the interleaved A/B gate is (issue 21): RUNS A/B runs of two builds of
# `bench serve --model MODEL`, each `bench run --server base=... --server head=...` with the
# CI's settings, then `bench compare --base base --head head --threshold cpu=5`; prints each
# run's verdict and the CPU and system-call changes, and how many runs were caught (exit 1).
#
# Usage: scripts/ab-series.sh BASE_BENCH HEAD_BENCH OUT_DIR [RUNS] [REPEAT] [MODEL]
#   BASE_BENCH, HEAD_BENCH: the two builds' bench binaries (the base also runs the load).
# The same build as both BASE and HEAD is the A/A that counts false alarms. A result file that
# exists already is judged again, not re-run.
set -euo pipefail
base=$1 head=$2 out=$3 runs=${4:-10} repeat=${5:-5} model=${6:-reactor}
mkdir -p "$out"
caught=0
for i in $(seq 1 "$runs"); do
  f="$out/run-$i.json"
  [ -e "$f" ] || "$base" run \
    --server "base=$base serve --model $model --listen 127.0.0.1:{port}" \
    --server "head=$head serve --model $model --listen 127.0.0.1:{port}" \
    -c 50 -d 2s --warmup 0.5s --repeat "$repeat" --accounting same \
    --out "$f" --no-report --quiet >/dev/null 2>&1 || true
  set +e
  verdict=$("$base" compare "$f" --base base --head head --threshold cpu=5)
  code=$?
  set -e
  [ "$code" = 1 ] && caught=$((caught + 1))
  row() { echo "$verdict" | grep -E "^[a-z ]+ +head +$1" | awk '{print $1, $(NF-3), $(NF-2), $(NF-1), $NF}'; }
  cpu=$(row "CPU")
  sys=$(row "syscalls")
  echo "run $i: exit $code; CPU: $cpu; syscalls: $sys"
done
echo "caught: $caught of $runs (repeat $repeat, model $model)"
