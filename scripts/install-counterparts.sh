#!/usr/bin/env bash
# Installs the real servers scenarios/counterparts.toml runs beside the exhibits: Redis,
# memcached and nginx, from the distribution's packages (Debian/Ubuntu: apt-get), when missing.
# Their packaged services are not started (a policy-rc.d refuses it during the install): bench
# starts each server itself, in the foreground, on a port of its own.
#
# Usage: scripts/install-counterparts.sh        (needs root, or sudo)
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v memcached >/dev/null 2>&1 || missing+=(memcached)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
if [ ${#missing[@]} -eq 0 ]; then
  echo "== redis-server, memcached and nginx are installed"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: ${missing[*]} missing, and this system has no apt-get: install them with its" \
       "package manager (Redis, memcached, nginx), then run the scenario again" >&2
  exit 3
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "== installing ${missing[*]} from the distribution's packages"
# Keep the packages' services from starting: bench runs the servers itself.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod +x "$policy"
  made_policy=1
fi
cleanup() { if [ "$made_policy" = 1 ]; then $sudo rm -f "$policy"; fi; }
trap cleanup EXIT
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" >/dev/null
echo "== installed: $(redis-server --version | cut -d' ' -f1-3); memcached $(memcached -V | cut -d' ' -f2); $(/usr/sbin/nginx -v 2>&1)"
