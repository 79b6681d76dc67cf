#!/usr/bin/env python3
"""Peak server memory per connection under clients that never read their answers (issue 18).

For each model (and workload), starts `bench serve` pinned to one CPU, opens N connections,
pipelines requests on every one as fast as the server takes them for FLOOD seconds without
reading an answer, and prints the server's peak resident memory (VmHWM) minus its resident
memory before the first connection, per connection. The same measurement as the ignored-free
test `a_thousand_never_reading_connections_hold_under_256_kib_each` in tests/hostile, as a
table, for any build of `bench` (to compare before and after a change).

    scripts/never-readers.py [--bench target/release/bench] [--connections 1000]
                             [--flood 2] [--models reactor,tokio] [--workloads echo,http]
"""

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time

HTTP_GET = b"GET /plaintext HTTP/1.1\r\nHost: hostile\r\n\r\n"


def vm(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {key} for {pid}")


def models(bench):
    out = subprocess.run([bench, "models", "--json"], capture_output=True, text=True)
    if out.returncode == 0:
        try:
            return [m["name"] for m in json.loads(out.stdout) if m.get("available", True)]
        except (ValueError, KeyError, TypeError):
            pass
    return ["blocking", "threadpool", "reactor", "multi-reactor", "reactor-pool", "reuseport",
            "proactor-uring", "proactor-emulated", "tokio"]


def trial(bench, model, workload, n, flood, cpu):
    args = [bench, "serve", "--model", model, "--workload", workload, "--listen",
            "127.0.0.1:0", "--threads", "2", "--idle-timeout", "30s", "--cpus", str(cpu)]
    if workload == "echo":
        args += ["--message-size", "64"]
    server = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(server.stdout.readline())
        host, port = ready["listening"].rsplit(":", 1)
        pid = server.pid
        before = vm(pid, "VmRSS")
        chunk = HTTP_GET * 1500 if workload == "http" else os.urandom(64 * 1024)
        conns = []
        for _ in range(n):
            s = socket.create_connection((host, int(port)))
            s.setblocking(False)
            conns.append([s, 0])
        sent = 0
        until = time.monotonic() + flood
        while time.monotonic() < until:
            took = False
            for c in conns:
                off = c[1] % len(chunk)
                try:
                    k = c[0].send(chunk[off:])
                except BlockingIOError:
                    continue
                c[1] += k
                sent += k
                took = took or k > 0
            if not took:
                time.sleep(0.005)
        time.sleep(0.3)
        peak = vm(pid, "VmHWM")
        alive = server.poll() is None
        for c in conns:
            c[0].close()
        return (peak - before) // n, sent, alive
    finally:
        server.terminate()
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bench", default="target/release/bench")
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--flood", type=float, default=2.0)
    p.add_argument("--models", default="")
    p.add_argument("--workloads", default="echo,http")
    p.add_argument("--cpu", type=int, default=0, help="the server's CPU")
    a = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = a.connections + 256
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(need, soft), hard), hard))
    names = a.models.split(",") if a.models else models(a.bench)
    print(f"{'model':18} {'workload':8} {'KiB/conn':>9} {'MiB sent':>9}")
    for model in names:
        for workload in a.workloads.split(","):
            try:
                per, sent, alive = trial(a.bench, model, workload, a.connections, a.flood, a.cpu)
            except Exception as e:  # noqa: BLE001 - one failed trial must not hide the rest
                print(f"{model:18} {workload:8} failed: {e}", file=sys.stderr)
                continue
            note = "" if alive else "  (server died)"
            print(f"{model:18} {workload:8} {per >> 10:9} {sent >> 20:9}{note}", flush=True)


if __name__ == "__main__":
    main()
