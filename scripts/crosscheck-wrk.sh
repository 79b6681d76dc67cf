#!/usr/bin/env bash
# Cross-checks bench's HTTP side against the outside references: wrk (the reference HTTP load
# generator) and nginx (the reference server, serving a 13-byte static file).
#
#   1. Client check: wrk and `bench load --workload http` each drive the same nginx, one after the
#      other in every round. Target: bench load reaches >= 0.95x wrk's throughput while spending
#      no more client CPU per request.
#   2. Server check: wrk drives nginx and `bench serve --model reactor --workload http`, one after
#      the other in every round, so their ratio is taken within one round. Target: the reactor
#      serves >= 1.3x nginx's throughput.
# It prints every round and the medians, then PASS/MISS for each target. The marks are
# informational: the exit status is 0 unless something failed to run (a missing tool, a server
# that did not start or answer, a client that failed).
#
# Placement: every server runs on SERVER_CPU (taskset, and `--cpus` for bench serve), every
# client on CLIENT_CPU. nginx runs one worker process (scripts/nginx/nginx.conf) from a temporary
# prefix with access logging off and keep-alive connections that last the whole run.
#
# Figures per measurement:
#   req/s, p50, p99  wrk's `Requests/sec:` line and `--latency` distribution; bench load's JSON
#                    result (.runs[0].throughput_rps, .latency_us.p50/.p99).
#   client CPU/req   wrk: user+sys CPU of the wrk process (getrusage(RUSAGE_CHILDREN) of a
#                    wrapper that runs only wrk), divided by the `N requests in` count. It covers
#                    wrk's whole life, its thread start-up and connects included (a few ms out of
#                    DURATION; it slightly favours bench). bench load: .runs[0].client.cpu_user_s
#                    + .cpu_sys_s (the measured window only) divided by .runs[0].requests.
#   busy             the client's CPU time over its wall time and CLIENT_CPU's CPU count (100%:
#                    the client's CPUs are saturated, so the server may be faster than
#                    measured; tick-based accounting can read a little over 100%).
#   server CPU/req   under wrk only: utime+stime of the server's processes (nginx master and
#                    worker; bench serve, every thread) from /proc/PID/stat before and after the
#                    run, divided by wrk's request count (10 ms tick resolution). Not taken under
#                    bench load, whose run includes a warm-up that its request count excludes.
#
# Installs nginx and wrk with apt-get when missing (root, or sudo), builds `cargo build
# --release` and runs target/release/bench. Everything it starts is stopped on exit, Ctrl-C
# included, and its temporary directory removed. It uses 127.0.0.1 only.
#
# Usage: scripts/crosscheck-wrk.sh
# Environment:
#   SERVER_CPU=0   CPU(s) of the servers (nginx, bench serve), as taskset -c takes them
#   CLIENT_CPU=1   CPU(s) of the clients (wrk, bench load), e.g. 1-3 with THREADS=3
#   CONNS=50       connections (wrk -c, bench load -c)
#   THREADS=1      client threads (wrk -t, bench load -t)
#   DURATION=5     seconds per measurement (wrk -d, bench load -d)
#   WARMUP=1       bench load's --warmup, in seconds (wrk has none; nginx is warm by then)
#   ROUNDS=3       rounds of each comparison
#   JSON=FILE      also write every measurement and the medians to FILE
#   KEEP=1         keep the temporary directory (raw outputs, nginx's error log) and print it
#   BENCH=PATH     use this bench binary instead of building target/release/bench
#   SKIP_BENCH=1   testing aid: skip the build and every bench measurement (wrk -> nginx only)
set -euo pipefail
JSON=${JSON:-}
if [ -n "$JSON" ] && [ "${JSON:0:1}" != / ]; then
  JSON=$PWD/$JSON # relative to where the script was started
fi
cd "$(dirname "$0")/.."
root=$PWD

SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
CONNS=${CONNS:-50}
THREADS=${THREADS:-1}
DURATION=${DURATION:-5}
DURATION=${DURATION%s}
WARMUP=${WARMUP:-1}
WARMUP=${WARMUP%s}
ROUNDS=${ROUNDS:-3}
SKIP_BENCH=${SKIP_BENCH:-0}
KEEP=${KEEP:-0}
bench=${BENCH:-}

for v in SERVER_CPU CLIENT_CPU; do
  if ! [[ ${!v} =~ ^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$ ]]; then
    echo "error: $v=${!v}: expected a CPU or a list of CPUs (e.g. 1, 1-3, 1,3)" >&2
    exit 2
  fi
done
for v in CONNS THREADS DURATION WARMUP ROUNDS; do
  if ! [[ ${!v} =~ ^[0-9]+$ ]]; then
    echo "error: $v=${!v}: expected a whole number" >&2
    exit 2
  fi
done
for v in CONNS THREADS DURATION ROUNDS; do
  if [ "${!v}" -eq 0 ]; then
    echo "error: $v must be at least 1" >&2
    exit 2
  fi
done
if [ "$SERVER_CPU" = "$CLIENT_CPU" ]; then
  echo "warning: SERVER_CPU and CLIENT_CPU are both $SERVER_CPU: client and server share a CPU" >&2
fi
if ! command -v python3 >/dev/null 2>&1; then
  echo "error: python3 is missing (used for parsing and statistics)" >&2
  exit 3
fi

# --- tools -----------------------------------------------------------------------------------
PATH=$PATH:/usr/sbin:/sbin # Debian's nginx is /usr/sbin/nginx, not on a user's PATH
missing=()
command -v nginx >/dev/null 2>&1 || missing+=(nginx)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: missing ${missing[*]}; this script installs them with Debian's apt-get" >&2
    exit 3
  fi
  sudo=()
  if [ "$(id -u)" != 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "error: missing ${missing[*]}: run as root or install them: apt-get install ${missing[*]}" >&2
      exit 3
    fi
    sudo=(sudo)
  fi
  # Installing nginx starts the system's nginx service (port 80) unless policy-rc.d forbids it;
  # forbid it for the time of the install, when no policy is in place already (containers often
  # have one). Only a policy created here is removed.
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# temporary, from crosscheck-wrk.sh: no service starts during its install\nexit 101\n' |
      "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    own_policy=1
  fi
  echo "== installing ${missing[*]} (apt-get)"
  apt_install() {
    "${sudo[@]}" apt-get update -qq &&
      "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  }
  ok=1
  apt_install || { echo "apt-get failed; retrying once" >&2; sleep 5; apt_install; } || ok=0
  if [ "$own_policy" = 1 ]; then "${sudo[@]}" rm -f "$policy"; fi
  if [ "$ok" = 0 ]; then
    echo "error: could not install ${missing[*]}" >&2
    exit 3
  fi
fi
nginx_bin=$(command -v nginx)
wrk_bin=$(command -v wrk)

if [ "$SKIP_BENCH" != 1 ]; then
  if [ -n "$bench" ]; then
    [ -x "$bench" ] || { echo "error: BENCH=$bench is not an executable" >&2; exit 3; }
  else
    echo "== cargo build --release"
    cargo build --release
    bench=$root/target/release/bench
    [ -x "$bench" ] || { echo "error: $bench was not built" >&2; exit 3; }
  fi
fi

# --- processes and clean-up ------------------------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/crosscheck-wrk.XXXXXX")
nginx_pid= # the nginx master: this shell's own child (`daemon off`)
nginx_workers=()
serve_pid= # bench serve: this shell's own child

# Whether PID is a live process (a zombie, exited but not yet reaped, is not).
alive() {
  local stat
  [ -n "$1" ] && stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat:0:1}" != Z ]
}

# Sends SIG to our child PID, waits up to 10 s for it to exit, then SIGKILL; reaps it. Returns
# the child's exit status.
stop_child() {
  local pid=$1 sig=$2 i rc=0
  kill -"$sig" "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then
    echo "warning: PID $pid did not exit within 10 s of SIG$sig; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || rc=$?
  return "$rc"
}

stop_nginx() {
  local w
  [ -n "$nginx_pid" ] || return 0
  # SIGTERM: fast shutdown; the master stops its worker, then exits.
  stop_child "$nginx_pid" TERM || true
  nginx_pid=
  # The workers are the master's children: gone with it, unless it had to be killed.
  for w in "${nginx_workers[@]}"; do
    if alive "$w" && grep -q '^nginx' "/proc/$w/comm" 2>/dev/null; then
      kill -KILL "$w" 2>/dev/null || true
    fi
  done
  nginx_workers=()
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$serve_pid" ]; then
    stop_child "$serve_pid" TERM || true
    serve_pid=
  fi
  stop_nginx
  if [ "$KEEP" = 1 ]; then
    echo "note: KEEP=1: kept $tmp" >&2
  else
    rm -rf "$tmp"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
  echo "error: $*" >&2
  exit 1
}

# --- python helper: free port, HTTP probe, measurements, report -------------------------------
cat >"$tmp/helper.py" <<'PY'
import json, os, re, resource, socket, statistics, subprocess, sys, time

BODY = b"Hello, World!"
TICK = os.sysconf("SC_CLK_TCK")


def freeport():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def get_once(port, path):
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the end of the headers")
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        length = int(headers.get("content-length", "-1"))
        while 0 <= length and len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        return status, headers, body, len(head) + 4


def probe(port, path, pid, timeout, name):
    """Waits until the server answers GET path; checks the response is the expected one."""
    port, timeout = int(port), float(timeout)
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if not alive(pid):
            sys.exit(f"error: {name} (PID {pid}) exited before answering")
        try:
            status, headers, body, head_len = get_once(port, path)
            break
        except (OSError, ValueError, IndexError) as e:
            last = e
            time.sleep(0.05)
    else:
        sys.exit(f"error: {name} did not answer GET {path} on 127.0.0.1:{port} within {timeout:g} s ({last})")
    if status != 200:
        sys.exit(f"error: {name} answered GET {path} with status {status}")
    ctype = headers.get("content-type", "")
    ok = body == BODY and ctype.split(";")[0].strip() == "text/plain"
    print(f"   {name}: GET {path} -> {status}, {head_len} bytes of headers, body {body!r} "
          f"({len(body)} bytes), Content-Type {ctype or '(none)'}, "
          f"Connection {headers.get('connection', '(none)')}")
    if not ok:
        print(f"   warning: {name} does not answer the expected 13-byte text/plain body "
              f"{BODY!r}: the comparison is not like for like", file=sys.stderr)


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == int(pid):
                        out.append(d)
            except (OSError, ValueError, IndexError):
                pass
    print(" ".join(out))


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        except (OSError, ValueError, IndexError):
            return None
    return total


def count_cpus(spec):
    n = 0
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        n += int(hi or lo) - int(lo) + 1
    return max(n, 1)


UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


def to_us(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not m:
        raise ValueError(f"unknown duration {text!r}")
    return float(m.group(1)) * UNITS[m.group(2)]


def parse_wrk(out):
    rec = {}
    m = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    rec["rps"] = float(m.group(1))
    m = re.search(r"^\s*(\d+) requests in ([\d.]+\w+),", out, re.M)
    rec["requests"] = int(m.group(1))
    rec["duration_s"] = to_us(m.group(2)) / 1e6
    for pct, key in (("50", "p50_us"), ("99", "p99_us")):
        m = re.search(rf"^\s*{pct}%\s+([\d.]+\w+)\s*$", out, re.M)
        rec[key] = to_us(m.group(1))
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    rec["errors"] = errors
    return rec


def parse_load(path):
    with open(path) as f:
        run = json.load(f)["runs"][0]
    if run.get("failure"):
        raise ValueError(f"bench load reports a failure: {run['failure']}")
    client = run["client"]
    duration = float(run["duration_s"])
    rps = float(run["throughput_rps"])
    requests = run.get("requests")
    if requests is None:
        requests = round(rps * duration)
    cpu = float(client["cpu_user_s"]) + float(client["cpu_sys_s"])
    return {
        "rps": rps,
        "requests": int(requests),
        "duration_s": duration,
        "p50_us": float(run["latency_us"]["p50"]),
        "p99_us": float(run["latency_us"]["p99"]),
        "errors": int(run["errors"]),
        "client_cpu_s": cpu,
        "client_cpu_scope": "measured window (bench's JSON)",
        "client_busy": float(client.get("busy_fraction") or cpu / duration / max(1, len(run.get("client_cpus") or [1]))),
        "warnings": run.get("warnings") or [],
    }


def measure(argv):
    """measure OUT KIND LABEL SERVER_PIDS LOAD_JSON TIMEOUT CLIENT_CPUS -- CMD...: runs CMD, writes OUT."""
    out, kind, label, server_pids, load_json, timeout, client_cpus = argv[:7]
    cmd = argv[8:]
    pids = server_pids.split(",") if server_pids else []
    before = cpu_ticks(pids)
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=float(timeout))
    except subprocess.TimeoutExpired:
        sys.exit(f"error: {label}: `{' '.join(cmd)}` ran past {timeout} s; killed")
    wall = time.monotonic() - t0
    after = cpu_ticks(pids)
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk (or bench load) only: our one child
    text = p.stdout.decode(errors="replace")
    with open(out[:-5] + ".txt", "w") as f:
        f.write(text)
    if p.returncode != 0:
        sys.exit(f"error: {label}: `{' '.join(cmd)}` exited with status {p.returncode}:\n{text}")
    try:
        if kind == "wrk":
            rec = parse_wrk(text)
            rec["client_cpu_s"] = ru.ru_utime + ru.ru_stime
            rec["client_cpu_scope"] = "wrk's whole process (connects included)"
            rec["client_busy"] = rec["client_cpu_s"] / wall / count_cpus(client_cpus)
            if before is not None and after is not None and pids:
                rec["server_cpu_s"] = (after - before) / TICK
        else:
            rec = parse_load(load_json)
    except (OSError, ValueError, KeyError, AttributeError, TypeError) as e:
        sys.exit(f"error: {label}: could not read the result ({e!r}); output:\n{text}")
    rec.update(label=label, kind=kind, wall_s=wall, command=cmd)
    rec["client_us_per_req"] = rec["client_cpu_s"] * 1e6 / rec["requests"] if rec["requests"] else None
    if "server_cpu_s" in rec:
        rec["server_us_per_req"] = rec["server_cpu_s"] * 1e6 / rec["requests"] if rec["requests"] else None
    with open(out, "w") as f:
        json.dump(rec, f, indent=1)
    if rec["client_us_per_req"] is None:
        sys.exit(f"error: {label}: no request was completed; output:\n{text}")
    srv = f", server {rec['server_us_per_req']:.2f} µs/req" if rec.get("server_us_per_req") else ""
    err = f", {rec['errors']} ERRORS" if rec["errors"] else ""
    print(f"   {label:<22} {rec['rps']:>10.0f} req/s  p50 {rec['p50_us']:>7.0f} µs  p99 {rec['p99_us']:>7.0f} µs  "
          f"client {rec['client_us_per_req']:.2f} µs/req (busy {rec['client_busy']:.0%}){srv}{err}")
    for w in rec.get("warnings", []):
        print(f"     bench warning: {w}")


def fmt_rps(x):
    return "-" if x is None else f"{x / 1e3:.1f}k"


def fmt(x, spec=".0f"):
    return "-" if x is None else format(x, spec)


def report(argv):
    d, rounds, skip_bench, json_out = argv[0], int(argv[1]), argv[2] == "1", argv[3]
    conf = json.loads(argv[4])

    def load(name):
        try:
            with open(os.path.join(d, name + ".json")) as f:
                return json.load(f)
        except FileNotFoundError:
            return None

    def g(rec, key):
        return None if rec is None else rec.get(key)

    def ratio(a, b):
        return None if a is None or b in (None, 0) else a / b

    def med(xs):
        xs = [x for x in xs if x is not None]
        return statistics.median(xs) if xs else None

    p1 = [(load(f"p1-r{r}-wrk-nginx"), load(f"p1-r{r}-load-nginx")) for r in range(1, rounds + 1)]
    p2 = [(load(f"p2-r{r}-wrk-nginx"), load(f"p2-r{r}-wrk-reactor")) for r in range(1, rounds + 1)]

    print()
    print(f"crosscheck: {conf['conns']} connections, {conf['threads']} client thread(s), "
          f"{conf['duration']} s per measurement, {rounds} rounds; server CPU {conf['server_cpu']}, "
          f"client CPU {conf['client_cpu']}")
    print()
    print("1. clients on nginx: wrk vs bench load (client CPU µs/req; busy = client CPU / wall time)")
    hdr = (f"{'round':<6} | {'wrk req/s':>9} {'p50µs':>6} {'p99µs':>6} {'cpu/req':>7} {'busy':>5} | "
           f"{'load req/s':>10} {'p50µs':>6} {'p99µs':>6} {'cpu/req':>7} {'busy':>5} | {'load/wrk':>8} {'cpu ratio':>9}")
    print(hdr)
    print("-" * len(hdr))
    rows1 = []
    for i, (w, l) in enumerate(p1, 1):
        tr = ratio(g(l, "rps"), g(w, "rps"))
        cr = ratio(g(l, "client_us_per_req"), g(w, "client_us_per_req"))
        rows1.append((w, l, tr, cr))
        print(f"{i:<6} | {fmt_rps(g(w, 'rps')):>9} {fmt(g(w, 'p50_us')):>6} {fmt(g(w, 'p99_us')):>6} "
              f"{fmt(g(w, 'client_us_per_req'), '.2f'):>7} {fmt(g(w, 'client_busy'), '.0%'):>5} | "
              f"{fmt_rps(g(l, 'rps')):>10} {fmt(g(l, 'p50_us')):>6} {fmt(g(l, 'p99_us')):>6} "
              f"{fmt(g(l, 'client_us_per_req'), '.2f'):>7} {fmt(g(l, 'client_busy'), '.0%'):>5} | "
              f"{fmt(tr, '.3f'):>8} {fmt(cr, '.3f'):>9}")
    m1 = {
        "wrk_rps": med(g(w, "rps") for w, *_ in rows1),
        "wrk_p50_us": med(g(w, "p50_us") for w, *_ in rows1),
        "wrk_p99_us": med(g(w, "p99_us") for w, *_ in rows1),
        "wrk_client_us_per_req": med(g(w, "client_us_per_req") for w, *_ in rows1),
        "wrk_client_busy": med(g(w, "client_busy") for w, *_ in rows1),
        "load_rps": med(g(l, "rps") for _, l, *_ in rows1),
        "load_p50_us": med(g(l, "p50_us") for _, l, *_ in rows1),
        "load_p99_us": med(g(l, "p99_us") for _, l, *_ in rows1),
        "load_client_us_per_req": med(g(l, "client_us_per_req") for _, l, *_ in rows1),
        "load_client_busy": med(g(l, "client_busy") for _, l, *_ in rows1),
        "load_over_wrk_rps": med(r[2] for r in rows1),
        "load_over_wrk_cpu_per_req": med(r[3] for r in rows1),
    }
    print("-" * len(hdr))
    print(f"{'median':<6} | {fmt_rps(m1['wrk_rps']):>9} {fmt(m1['wrk_p50_us']):>6} {fmt(m1['wrk_p99_us']):>6} "
          f"{fmt(m1['wrk_client_us_per_req'], '.2f'):>7} {fmt(m1['wrk_client_busy'], '.0%'):>5} | "
          f"{fmt_rps(m1['load_rps']):>10} {fmt(m1['load_p50_us']):>6} {fmt(m1['load_p99_us']):>6} "
          f"{fmt(m1['load_client_us_per_req'], '.2f'):>7} {fmt(m1['load_client_busy'], '.0%'):>5} | "
          f"{fmt(m1['load_over_wrk_rps'], '.3f'):>8} {fmt(m1['load_over_wrk_cpu_per_req'], '.3f'):>9}")

    print()
    print("2. servers under wrk: nginx vs bench serve --model reactor (srv/req: server CPU µs per request)")
    hdr = (f"{'round':<6} | {'nginx req/s':>11} {'p50µs':>6} {'p99µs':>6} {'srv/req':>7} {'busy':>5} | "
           f"{'reactor req/s':>13} {'p50µs':>6} {'p99µs':>6} {'srv/req':>7} {'busy':>5} | {'reactor/nginx':>13}")
    print(hdr)
    print("-" * len(hdr))
    rows2 = []
    for i, (n, r) in enumerate(p2, 1):
        rr = ratio(g(r, "rps"), g(n, "rps"))
        rows2.append((n, r, rr))
        print(f"{i:<6} | {fmt_rps(g(n, 'rps')):>11} {fmt(g(n, 'p50_us')):>6} {fmt(g(n, 'p99_us')):>6} "
              f"{fmt(g(n, 'server_us_per_req'), '.2f'):>7} {fmt(g(n, 'client_busy'), '.0%'):>5} | "
              f"{fmt_rps(g(r, 'rps')):>13} {fmt(g(r, 'p50_us')):>6} {fmt(g(r, 'p99_us')):>6} "
              f"{fmt(g(r, 'server_us_per_req'), '.2f'):>7} {fmt(g(r, 'client_busy'), '.0%'):>5} | {fmt(rr, '.3f'):>13}")
    m2 = {
        "nginx_rps": med(g(n, "rps") for n, *_ in rows2),
        "nginx_p50_us": med(g(n, "p50_us") for n, *_ in rows2),
        "nginx_p99_us": med(g(n, "p99_us") for n, *_ in rows2),
        "nginx_server_us_per_req": med(g(n, "server_us_per_req") for n, *_ in rows2),
        "nginx_client_busy": med(g(n, "client_busy") for n, *_ in rows2),
        "reactor_rps": med(g(r, "rps") for _, r, _ in rows2),
        "reactor_p50_us": med(g(r, "p50_us") for _, r, _ in rows2),
        "reactor_p99_us": med(g(r, "p99_us") for _, r, _ in rows2),
        "reactor_server_us_per_req": med(g(r, "server_us_per_req") for _, r, _ in rows2),
        "reactor_client_busy": med(g(r, "client_busy") for _, r, _ in rows2),
        "reactor_over_nginx_rps": med(x[2] for x in rows2),
    }
    print("-" * len(hdr))
    print(f"{'median':<6} | {fmt_rps(m2['nginx_rps']):>11} {fmt(m2['nginx_p50_us']):>6} {fmt(m2['nginx_p99_us']):>6} "
          f"{fmt(m2['nginx_server_us_per_req'], '.2f'):>7} {fmt(m2['nginx_client_busy'], '.0%'):>5} | "
          f"{fmt_rps(m2['reactor_rps']):>13} {fmt(m2['reactor_p50_us']):>6} {fmt(m2['reactor_p99_us']):>6} "
          f"{fmt(m2['reactor_server_us_per_req'], '.2f'):>7} {fmt(m2['reactor_client_busy'], '.0%'):>5} | "
          f"{fmt(m2['reactor_over_nginx_rps'], '.3f'):>13}")

    def mark(value, ok):
        return "n/a " if value is None else ("PASS" if ok(value) else "MISS")

    print()
    print("targets (medians of the per-round ratios; informational):")
    t = m1["load_over_wrk_rps"]
    print(f"  [{mark(t, lambda v: v >= 0.95)}] bench load throughput >= 0.95x wrk's on nginx: {fmt(t, '.3f')}x")
    c = m1["load_over_wrk_cpu_per_req"]
    print(f"  [{mark(c, lambda v: v <= 1.0)}] bench load client CPU per request <= wrk's: {fmt(c, '.3f')}x "
          f"({fmt(m1['load_client_us_per_req'], '.2f')} vs {fmt(m1['wrk_client_us_per_req'], '.2f')} µs/req)")
    r = m2["reactor_over_nginx_rps"]
    print(f"  [{mark(r, lambda v: v >= 1.3)}] bench serve reactor >= 1.3x nginx under wrk: {fmt(r, '.3f')}x")
    if skip_bench:
        print("  (SKIP_BENCH=1: the bench measurements were skipped)")
    saturated = [rec["label"] for pair in p1 + p2 for rec in pair
                 if rec is not None and rec.get("client_busy", 0) >= 0.95]
    if saturated:
        print(f"  note: the client was CPU-saturated (busy >= 95%) in {len(saturated)} measurement(s) "
              f"(e.g. {saturated[0]}): those throughputs are bounded by the client, not the server")
    errs = [rec["label"] for pair in p1 + p2 for rec in pair if rec is not None and rec.get("errors")]
    if errs:
        print(f"  note: errors were reported in: {', '.join(errs)}")

    if json_out:
        with open(json_out, "w") as f:
            json.dump({"config": conf, "clients_on_nginx": {"rounds": [list(p) for p in p1], "median": m1},
                       "servers_under_wrk": {"rounds": [list(p) for p in p2], "median": m2}}, f, indent=1)
        print(f"\nwritten to {json_out}")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "freeport":
        freeport()
    elif cmd == "probe":
        probe(*args)
    elif cmd == "children":
        children(*args)
    elif cmd == "measure":
        measure(args)
    elif cmd == "report":
        report(args)
    else:
        sys.exit(f"helper: unknown command {cmd}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
PY
helper() { python3 "$tmp/helper.py" "$@"; }

# A measurement's time limit: the run itself plus ample slack for start-up and shutdown.
limit=$((DURATION + WARMUP + 60))

# run_wrk NAME LABEL PORT SERVER_PIDS
run_wrk() {
  helper measure "$tmp/$1.json" wrk "$2" "$4" "" "$limit" "$CLIENT_CPU" -- \
    taskset -c "$CLIENT_CPU" "$wrk_bin" -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency \
    "http://127.0.0.1:$3/plaintext"
}

# run_load NAME LABEL PORT
run_load() {
  helper measure "$tmp/$1.json" load "$2" "" "$tmp/$1.load.json" "$limit" "$CLIENT_CPU" -- \
    taskset -c "$CLIENT_CPU" "$bench" load --target "http://127.0.0.1:$3/plaintext" --workload http \
    -c "$CONNS" -t "$THREADS" -d "${DURATION}s" --warmup "${WARMUP}s" --cpus "$CLIENT_CPU" --quiet \
    --json "$tmp/$1.load.json"
}

# --- nginx -----------------------------------------------------------------------------------
prefix=$tmp/nginx
mkdir -p "$prefix/html"
printf 'Hello, World!' >"$prefix/html/plaintext"
# nginx started as root runs its worker as nobody: it must be able to reach and read the file
# (mktemp -d makes a 0700 directory).
chmod 755 "$tmp" "$prefix" "$prefix/html"
chmod 644 "$prefix/html/plaintext"
nginx_port=$(helper freeport)
nobody_group=$(id -gn nobody 2>/dev/null || echo nogroup)
sed -e "s/@PORT@/$nginx_port/g" -e "s/@GROUP@/$nobody_group/g" "$root/scripts/nginx/nginx.conf" >"$prefix/nginx.conf"

echo "== nginx on 127.0.0.1:$nginx_port, CPU $SERVER_CPU ($("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //'))"
# `exec` in a subshell, so $! is nginx itself (with traps set, bash would otherwise keep a
# subshell between): the master is this shell's child, stopped and reaped by cleanup.
(
  trap - EXIT INT TERM
  exec taskset -c "$SERVER_CPU" "$nginx_bin" -p "$prefix/" -c "$prefix/nginx.conf" -e "$prefix/error.log" \
    >"$prefix/stdout.log" 2>&1
) &
nginx_pid=$!
if ! helper probe "$nginx_port" /plaintext "$nginx_pid" 10 nginx; then
  cat "$prefix/stdout.log" "$prefix/error.log" >&2 2>/dev/null || true
  fail "nginx did not start (its logs are above)"
fi
read -r -a nginx_workers <<<"$(helper children "$nginx_pid")"
[ ${#nginx_workers[@]} -ge 1 ] || fail "nginx runs no worker process"
nginx_pids=$(
  IFS=,
  echo "$nginx_pid,${nginx_workers[*]}"
)
echo "   master PID $nginx_pid, worker PID(s) ${nginx_workers[*]}"

# --- 1. clients on nginx: wrk vs bench load --------------------------------------------------
echo "== 1. clients on nginx: wrk vs bench load, $ROUNDS rounds of ${DURATION} s each"
for ((r = 1; r <= ROUNDS; r++)); do
  echo "-- round $r/$ROUNDS"
  run_wrk "p1-r$r-wrk-nginx" "wrk -> nginx" "$nginx_port" "$nginx_pids"
  if [ "$SKIP_BENCH" != 1 ]; then
    run_load "p1-r$r-load-nginx" "bench load -> nginx" "$nginx_port"
  fi
done

# --- 2. servers under wrk: nginx vs bench serve reactor --------------------------------------
if [ "$SKIP_BENCH" != 1 ]; then
  echo "== bench serve --model reactor --workload http, CPU $SERVER_CPU"
  (
    trap - EXIT INT TERM
    exec taskset -c "$SERVER_CPU" "$bench" serve --model reactor --workload http --cpus "$SERVER_CPU" \
      >"$tmp/serve.out" 2>"$tmp/serve.err"
  ) &
  serve_pid=$!
  serve_port=
  for ((i = 0; i < 200; i++)); do
    if grep -q '"listening"' "$tmp/serve.out" 2>/dev/null; then
      serve_port=$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    if "\"listening\"" in line:
        print(json.loads(line)["listening"].rsplit(":", 1)[1])
        break
' "$tmp/serve.out")
      break
    fi
    alive "$serve_pid" || break
    sleep 0.1
  done
  if [ -z "$serve_port" ]; then
    cat "$tmp/serve.out" "$tmp/serve.err" >&2 || true
    fail "bench serve printed no ready line (its output is above)"
  fi
  helper probe "$serve_port" /plaintext "$serve_pid" 10 "bench serve" ||
    fail "bench serve does not answer GET /plaintext"
  echo "   PID $serve_pid, listening on 127.0.0.1:$serve_port"
fi

echo "== 2. servers under wrk: nginx vs bench serve reactor, $ROUNDS rounds of ${DURATION} s each"
for ((r = 1; r <= ROUNDS; r++)); do
  echo "-- round $r/$ROUNDS"
  # Alternate which goes first, so neither always runs on the warmer machine.
  if [ "$SKIP_BENCH" = 1 ]; then
    run_wrk "p2-r$r-wrk-nginx" "wrk -> nginx" "$nginx_port" "$nginx_pids"
  elif ((r % 2 == 1)); then
    run_wrk "p2-r$r-wrk-nginx" "wrk -> nginx" "$nginx_port" "$nginx_pids"
    run_wrk "p2-r$r-wrk-reactor" "wrk -> bench reactor" "$serve_port" "$serve_pid"
  else
    run_wrk "p2-r$r-wrk-reactor" "wrk -> bench reactor" "$serve_port" "$serve_pid"
    run_wrk "p2-r$r-wrk-nginx" "wrk -> nginx" "$nginx_port" "$nginx_pids"
  fi
done

if [ -n "$serve_pid" ]; then
  # SIGTERM: bench serve prints its final counters and exits 0.
  rc=0
  stop_child "$serve_pid" TERM || rc=$?
  serve_pid=
  [ "$rc" = 0 ] || { cat "$tmp/serve.err" >&2 || true; fail "bench serve exited with status $rc after SIGTERM"; }
  grep -q '"stopped"' "$tmp/serve.out" || echo "warning: bench serve printed no final counters" >&2
fi
stop_nginx

conf=$(printf '{"conns":%d,"threads":%d,"duration":%d,"warmup":%d,"server_cpu":"%s","client_cpu":"%s","skip_bench":%s}' \
  "$CONNS" "$THREADS" "$DURATION" "$WARMUP" "$SERVER_CPU" "$CLIENT_CPU" "$([ "$SKIP_BENCH" = 1 ] && echo true || echo false)")
helper report "$tmp" "$ROUNDS" "$SKIP_BENCH" "$JSON" "$conf"
