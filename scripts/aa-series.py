#!/usr/bin/env python3
"""A/A series: compares every pair of result files of the same build with `bench compare` and
counts the false alarms (any verdict other than "no change", and any run called failed or
missing), per metric, and lists the changes said to be common to every model; also gives, per
metric, the smallest threshold that would have kept every pair silent (the largest inner bound
of a significant change's 95% interval). DESIGN.md, "Comparing", has the series of
results/aa/ and what it set.

    scripts/aa-series.py [--bench target/release/bench] [--models a,b] FILE... [-- COMPARE ARGS]

e.g. scripts/aa-series.py results/aa/aa[2-6].json -- --normalize-to reactor
"""
import argparse
import collections
import itertools
import json
import subprocess
import sys


def main():
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", default="target/release/bench")
    ap.add_argument("--models", help="only these models (comma-separated)")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args(argv)
    only = set(args.models.split(",")) if args.models else None
    n = collections.Counter()
    alarms = collections.Counter()
    need = collections.defaultdict(float)
    where = {}
    listed = []
    for a, b in itertools.combinations(args.files, 2):
        out = subprocess.run([args.bench, "compare", a, b, "--format", "json", *extra],
                             capture_output=True, text=True)
        if out.returncode == 2:
            sys.exit(f"bench compare {a} {b} refused: {out.stderr.strip()}")
        comparison = json.loads(out.stdout)["comparison"]
        for m in comparison.get("missing", []):
            n["missing"] += 1
            alarms["missing"] += 1
            listed.append(f"{a} {b} {m['run']} missing: {m['why']}")
        for c in comparison.get("common", []):
            listed.append(f"{a} {b} common to every model: {c['metric']} {c['direction']} "
                          f"({c['least']:+.3f} to {c['most']:+.3f}; noted, not gated)")
        for row in comparison["rows"]:
            model = row["key"]["model"]
            if only and model not in only:
                continue
            for key, c in row["metrics"].items():
                n[key] += 1
                if c["verdict"] != "no_change":
                    alarms[key] += 1
                    listed.append(f"{a} {b} {model} {key} {c['verdict']} {c['change']}")
                iv, p = c.get("interval"), c.get("p_value")
                if iv and None not in iv and p is not None and p < 0.05 and (iv[0] > 0 or iv[1] < 0):
                    inner = min(abs(iv[0]), abs(iv[1]))
                    if inner > need[key]:
                        need[key], where[key] = inner, f"{model}, {a} vs {b}"
    print(f"{len(args.files)} files, {sum(n.values())} comparisons, {sum(alarms.values())} false alarms")
    for key in n:
        print(f"  {key:26} {n[key]:4} compared, {alarms[key]:3} alarms; silent above "
              f"{100 * need[key]:5.1f}% {('(' + where[key] + ')') if key in where else ''}")
    for line in listed:
        print("  alarm:", line)


if __name__ == "__main__":
    main()
