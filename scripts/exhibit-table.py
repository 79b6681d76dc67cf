#!/usr/bin/env python3
"""Before/after tables of scripts/exhibit-ab.sh's results (issue 23), as Markdown.

For each result file: one row per model (the outside servers' names, e.g. base and head), the
median over its repeats of req/s, p50, p99, server CPU per request, context switches per
request and system calls per request, total and by name (every call at 0.005 or more per
request), with the smallest and largest repeat of p99 and of CPU per request beside their
medians (the run-to-run spread), then each server's command. Usage: scripts/exhibit-table.py RESULT.json...
"""
import json
import statistics
import sys


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def us(x):
    return "-" if x is None else (f"{x / 1000:.2f} ms" if x >= 1000 else f"{x:.0f} µs")


def table(path):
    doc = json.load(open(path))
    runs = doc["runs"]
    order = []
    for r in runs:
        if r["model"] not in order:
            order.append(r["model"])
    first = runs[0]
    print(f"#### {path}\n")
    print(
        f"{first['connections']} connections, {first['workload']}, {first['duration_s']:g} s "
        f"per run, {len(runs) // len(order)} interleaved repeats; "
        f"bench {doc['tool']['git_commit'][:7]}, loadavg at start {doc['env']['loadavg_at_start'][0]}\n"
    )
    print("| server | req/s | p50 | p99 (min-max) | CPU µs/req (min-max) | ctxsw/req | calls/req | by name |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for model in order:
        rs = [r for r in runs if r["model"] == model and not r.get("failure")]
        lat = [r["latency_us"] for r in rs]
        sc = [r.get("syscalls") or {} for r in rs]
        names = sorted({n for s in sc for n in (s.get("by_name_per_request") or {})})
        by = {n: median([(s.get("by_name_per_request") or {}).get(n, 0.0) for s in sc]) for n in names}
        by = sorted(((v, n) for n, v in by.items() if v >= 0.005), reverse=True)
        p99 = [l["p99"] for l in lat]
        cpu = [r["server"]["cpu_us_per_request"] for r in rs]
        print(
            f"| {model} | {median([r['throughput_rps'] for r in rs]) / 1000:.1f}k "
            f"| {us(median([l['p50'] for l in lat]))} "
            f"| {us(median(p99))} ({us(min(p99))}-{us(max(p99))}) "
            f"| {median(cpu):.2f} ({min(cpu):.1f}-{max(cpu):.1f}) "
            f"| {median([r['server']['ctx_switches_per_request'] for r in rs]):.2f} "
            f"| {median([s.get('per_request') for s in sc]) or 0:.2f} "
            f"| {', '.join(f'{n} {v:.2f}' for v, n in by)} |"
        )
    print()
    for model in order:
        cmd = next(r.get("command") for r in runs if r["model"] == model)
        if cmd:
            print(f"- {model}: `{' '.join(cmd) if isinstance(cmd, list) else cmd}`")
    print()


for p in sys.argv[1:]:
    table(p)
