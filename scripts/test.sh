#!/usr/bin/env bash
# The project's test command (README): installs what the tests need, then runs every test.
#
# Today the tests need only the Rust toolchain and the crates in Cargo.lock. Tests that need
# more (perf counters, Wine for the IOCP model) will install it here from Debian's packages.
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

cargo test --all-targets "$@"
