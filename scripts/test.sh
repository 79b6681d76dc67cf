#!/usr/bin/env bash
# The project's test command (README): installs what the tests need, then runs every test.
#
# The Linux tests need only the Rust toolchain and the crates in Cargo.lock (and a kernel that
# allows io_uring, and perf tracepoints: root and tracefs, mounted below when missing). Then scripts/test-windows.sh cross-compiles for Windows and runs the Windows
# tests (proactor-iocp among them) under Wine, installing Debian's packages for that when
# missing (~2 GB, a few minutes the first time). IOMODELS_SKIP_WINDOWS=1 skips that part and
# says so; arguments are passed to the Linux `cargo test` only.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo is missing: install the Rust toolchain (https://rustup.rs)" >&2
  exit 3
fi

# Several tests start servers and open hundreds of sockets; a low descriptor limit would make
# them fail for the wrong reason.
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 4096 ]; then
  ulimit -n 4096 2>/dev/null || echo "warning: ulimit -n is $(ulimit -n); some tests need 4096" >&2
fi

# System-call accounting (tests/syscalls.rs) reads perf tracepoint ids from tracefs, which a
# fresh machine may not have mounted.
if [ "$(uname -s)" = Linux ] && [ ! -d /sys/kernel/tracing/events ]; then
  if [ "$(id -u)" = 0 ]; then
    mount -t tracefs nodev /sys/kernel/tracing ||
      echo "warning: cannot mount tracefs at /sys/kernel/tracing; tests/syscalls.rs will fail" >&2
  else
    echo "warning: tracefs is not mounted and this is not root: tests/syscalls.rs will fail" \
      "(as root: mount -t tracefs nodev /sys/kernel/tracing)" >&2
  fi
fi

# tests/namespaces.rs makes network namespaces as hosts with iproute2's `ip` (root only).
if [ "$(uname -s)" = Linux ] && ! command -v ip >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing iproute2 (ip) for tests/namespaces.rs" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q iproute2 >/dev/null ||
      { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q iproute2 >/dev/null; } ||
      echo "warning: cannot install iproute2; tests/namespaces.rs will fail (apt-get install iproute2)" >&2
  else
    echo "warning: ip (iproute2) is missing and this is not root: tests/namespaces.rs will fail" >&2
  fi
fi

# --no-fail-fast: every test binary runs and every failure is reported, not only the first
# binary's; cargo still exits non-zero on any failure.
cargo test --all-targets --no-fail-fast "$@"

if [ "${IOMODELS_SKIP_WINDOWS:-}" = 1 ]; then
  echo "note: IOMODELS_SKIP_WINDOWS=1: the Windows build and its tests under Wine were skipped" >&2
else
  scripts/test-windows.sh
fi
