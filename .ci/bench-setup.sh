#!/usr/bin/env bash
# Install what the benchmarks need from Debian: wrk (the load generator) and
# HAProxy (the reference load balancer of benchmarks/lb_overhead.py).
#
# Idempotent: installs only what is missing. Debian's haproxy package would
# start its service on installation; nothing here needs it running (the
# benchmark starts its own haproxy on a free loopback port), so the service is
# not started (policy-rc.d for the duration of the install) and is left alone.
#
# Usage: .ci/bench-setup.sh
set -euo pipefail

PACKAGES=(wrk haproxy)

log() { printf 'bench-setup: %s\n' "$*"; }
die() { printf 'bench-setup: error: %s\n' "$*" >&2; exit 1; }

missing=()
for pkg in "${PACKAGES[@]}"; do
    command -v "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -eq 0 ]; then
    log "already installed: ${PACKAGES[*]} ($(haproxy -v | head -1))"
    exit 0
fi

command -v apt-get >/dev/null 2>&1 || die "needs Debian's apt-get; install ${missing[*]} by hand"
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "run as root or install sudo"
    SUDO=(sudo)
fi

# Keep the haproxy service from starting during installation.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
    "${SUDO[@]}" chmod +x "$policy"
    own_policy=1
fi
cleanup() { if [ "$own_policy" -eq 1 ]; then "${SUDO[@]}" rm -f "$policy"; fi; }
trap cleanup EXIT

log "installing ${missing[*]}"
"${SUDO[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for pkg in "${PACKAGES[@]}"; do
    command -v "$pkg" >/dev/null 2>&1 || die "$pkg is still missing after apt-get install"
done
log "installed: $(wrk -v 2>&1 | head -1 | cut -c1-40); $(haproxy -v | head -1)"
