#!/usr/bin/env bash
# Cross-compiles the crate and its tests for Windows (x86_64-pc-windows-gnu) and runs them under
# Wine: the integration template over every model that runs on Windows (proactor-iocp included),
# the platform tests (stdin control, an end-to-end `bench run --model proactor-iocp` whose result
# validates against the schema), the result-schema tests and the unit tests.
#
# Installs what it needs from Debian's packages when missing (rustc-web, rust-web-src,
# cargo-web and rust-web-clippy: Debian's Rust with the standard library's source, since
# rustup's toolchain has no Windows std here; mingw-w64 to link; wine64 to run). Everything it
# builds or writes lives under target/windows, including a private Wine prefix; every Wine
# process it started is stopped on exit, whatever happened. It also runs clippy on the
# Windows build, which the Linux lint never sees.
#
# Figures taken under Wine are for correctness only: Wine routes socket I/O through wineserver
# and runs ~15-20x slower than Windows.
#
# Usage: scripts/test-windows.sh [arguments for the test binaries, e.g. a test name filter]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

target=x86_64-pc-windows-gnu
packages=(rustc-web rust-web-src cargo-web rust-web-clippy gcc-mingw-w64-x86-64 wine64 wine)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done
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
  echo "== installing ${missing[*]} (Debian packages, ~2 GB)"
  install() {
    "${sudo[@]}" apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
  }
  # A first attempt once failed here on a cache rename; the retry worked.
  install || { echo "apt-get failed; retrying once" >&2; sleep 5; install; }
fi

# Debian's toolchain, not rustup's: it has the standard library's source, which -Zbuild-std
# compiles for the Windows target (RUSTC_BOOTSTRAP allows the unstable flag on a stable rustc).
export PATH=/usr/bin:$PATH
export RUSTC=/usr/bin/rustc
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=/usr/lib/wine/wine64
export CARGO_TARGET_DIR=$root/target/windows
export WINEPREFIX=$CARGO_TARGET_DIR/wine-prefix
export WINEDEBUG=-all
export WINEDLLOVERRIDES='mscoree,mshtml='
unset DISPLAY WAYLAND_DISPLAY
mkdir -p "$CARGO_TARGET_DIR"

# Stop every Wine process of our prefix, whatever happens.
stop_wine() { wineserver -k 2>/dev/null || true; wineserver -w 2>/dev/null || true; }
trap stop_wine EXIT
trap 'exit 130' INT TERM

if [ ! -f "$WINEPREFIX/system.reg" ]; then
  echo "== creating the Wine prefix $WINEPREFIX"
  /usr/lib/wine/wine64 wineboot -i >/dev/null 2>&1
  wineserver -w
fi

# Wine 8.0 has no bcryptprimitives.dll, which Rust's std imports (ProcessPrng): without it
# every binary exits 53 at load with no output. See scripts/wine/bcryptprimitives.c.
dll=$CARGO_TARGET_DIR/bcryptprimitives.dll
if [ ! -f "$dll" ] || [ scripts/wine/bcryptprimitives.c -nt "$dll" ]; then
  x86_64-w64-mingw32-gcc -shared -O2 -o "$dll" scripts/wine/bcryptprimitives.c -ladvapi32
fi
cp "$dll" "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"

# The Windows-only code (src/sys/windows.rs, proactor_iocp/port.rs) is invisible to the Linux
# clippy run, so it is linted here, as strictly.
echo "== cargo clippy for $target"
cargo clippy -Zbuild-std --target "$target" --all-targets -- -D warnings

echo "== cargo build for $target (the first build also compiles std)"
cargo test -Zbuild-std --target "$target" --all-targets --no-run

echo "== tests under Wine"
# Sequential: the template tests each start servers, and wineserver serialises socket calls;
# in parallel they only time each other out.
cargo test -Zbuild-std --target "$target" --all-targets -- --test-threads=1 "$@"
echo "== ok: the Windows build passed its tests under $(/usr/lib/wine/wine64 --version)"
