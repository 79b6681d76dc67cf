#!/usr/bin/env bash
# Opens a report's index.html in headless Chromium (Debian's chromium package, installed when
# missing) and saves a full-page screenshot, to check that the page renders its charts with no
# network: `scripts/screenshot-report.sh [REPORT_DIR] [OUT.png]`.
#
# Without REPORT_DIR it writes a report of the test fixtures (tests/fixtures) into
# target/report-screenshot/ first. The screenshot goes to OUT.png (default:
# REPORT_DIR/screenshot.png). Chromium runs with networking off (--disable-background-networking,
# a proxy that goes nowhere), so a page that needed the network would show it.
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${1:-}"
if [[ -z "$dir" ]]; then
  cargo build --release --quiet
  dir=target/report-screenshot
  ./target/release/bench report tests/fixtures/closed-loop.json tests/fixtures/sweep.json \
    tests/fixtures/slo.json tests/fixtures/open-loop.json --out "$dir"
fi
out="${2:-$dir/screenshot.png}"
[[ -f "$dir/index.html" ]] || { echo "no $dir/index.html: give a report folder" >&2; exit 2; }

if ! command -v chromium >/dev/null; then
  echo "== installing chromium (Debian's package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
fi

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
page="file://$(realpath "$dir/index.html")"
# A tall window: the whole report in one picture.
timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --proxy-server=127.0.0.1:9 --user-data-dir="$profile" --hide-scrollbars \
  --window-size=1200,6000 --screenshot="$(realpath -m "$out")" "$page" 2>/dev/null
[[ -s "$out" ]] || { echo "chromium wrote no screenshot" >&2; exit 1; }
echo "screenshot of $page written to $out"
