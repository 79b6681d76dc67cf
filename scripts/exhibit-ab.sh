#!/usr/bin/env bash
# Before/after of one exhibit (issue 23): two builds of bench, BASE and HEAD, each serving
# MODEL as an outside server (`bench serve`), measured by HEAD's `bench run` in one run, their
# repeats interleaved (A B A B), server on CPU 0, load on CPU 1. Extra arguments go to
# `bench run` (connections, duration, --work-us, --accounting ...).
#
# Usage: scripts/exhibit-ab.sh BASE HEAD MODEL OUT.json [bench run options...]
# Example: scripts/exhibit-ab.sh /tmp/base/bench target/release/bench proactor-uring \
#            results/reference/exhibits/uring-c1.json -c 1 -d 3s --repeat 3
set -euo pipefail
base=$1 head=$2 model=$3 out=$4
shift 4
serve() { echo "$1 serve --model $model --listen 127.0.0.1:{port} ${SERVE_ARGS:-}"; }
exec "$head" run --server "base=$(serve "$base")" --server "head=$(serve "$head")" \
  --server-cpus 0 --client-cpus 1 --out "$out" "$@"
