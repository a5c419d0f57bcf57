#!/usr/bin/env bash
# Make this machine able to build and run the project's container images
# without Docker's engine and without any registry:
#
#   1. install Podman (runc runtime), mmdebstrap and podman-compose from Debian;
#   2. configure Podman for this kind of machine (runc, cgroupfs, no default
#      ulimits) in a drop-in file, leaving every other setting alone;
#   3. create the Python base image localhost/ship-python-base:bookworm from
#      Debian packages (mmdebstrap + podman import), cached as a tarball so a
#      machine whose Podman storage is empty imports it in seconds.
#
# Idempotent: each step checks first and does nothing when already done.
#
# Usage: .ci/podman-setup.sh [--force-base] [--no-base]
#   --force-base  rebuild the base image (and its cached tarball) from Debian
#   --no-base     stop after installing and configuring Podman
#
# Environment:
#   SHIP_BASE_IMAGE   image name    (default localhost/ship-python-base:bookworm)
#   SHIP_CACHE_DIR    tarball cache (default ${XDG_CACHE_HOME:-~/.cache}/ship)
#   DEBIAN_MIRROR     Debian mirror (default http://deb.debian.org/debian)
#
# Build the project's images with the base it makes:
#   podman build --build-arg BASE_IMAGE=localhost/ship-python-base:bookworm .
set -euo pipefail

BASE_IMAGE="${SHIP_BASE_IMAGE:-localhost/ship-python-base:bookworm}"
SUITE=bookworm
CACHE_DIR="${SHIP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ship}"
BASE_TAR="$CACHE_DIR/ship-python-base-$SUITE.tar"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
DROPIN=/etc/containers/containers.conf.d/50-ship.conf
PACKAGES=(podman runc conmon netavark aardvark-dns iptables catatonit uidmap
          slirp4netns fuse-overlayfs mmdebstrap podman-compose)

force_base=0
want_base=1
for arg in "$@"; do
    case "$arg" in
        --force-base) force_base=1 ;;
        --no-base) want_base=0 ;;
        -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "podman-setup: unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done

START=$SECONDS
log() { printf 'podman-setup [%3ss]: %s\n' "$((SECONDS - START))" "$*"; }
die() { printf 'podman-setup: error: %s\n' "$*" >&2; exit 1; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "run as root or install sudo"
    SUDO=(sudo)
fi

# 1. Packages ---------------------------------------------------------------
missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = installed ] || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
    log "packages: all present ($(podman --version))"
else
    log "packages: installing ${missing[*]}"
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    log "packages: installed ($(podman --version))"
fi

# 2. Podman configuration ----------------------------------------------------
# crun fails on this machine's hybrid cgroups, systemd is not PID 1 (so no
# systemd cgroup manager), and the default nofile ulimit cannot be applied
# inside this sandbox. A drop-in keeps any containers.conf the admin has.
want_conf='# Written by .ci/podman-setup.sh: settings this kind of machine needs.
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
'
if [ -f "$DROPIN" ] && [ "$(cat "$DROPIN")" = "$(printf '%s' "$want_conf")" ]; then
    log "config: $DROPIN up to date"
else
    "${SUDO[@]}" mkdir -p "$(dirname "$DROPIN")"
    printf '%s' "$want_conf" | "${SUDO[@]}" tee "$DROPIN" >/dev/null
    log "config: wrote $DROPIN (runc, cgroupfs, default_ulimits = [])"
fi

# (The first podman command on a fresh machine prints warnings on stderr.)
info=$(podman info --format '{{.Host.OCIRuntime.Name}} {{.Host.CgroupManager}} {{.Store.GraphDriverName}}' 2>/dev/null) \
    || die "podman info failed: $(podman info 2>&1 >/dev/null | tail -n 1)"
read -r runtime cgmgr driver <<<"$info"
merged=$(podman --log-level=debug version 2>&1 >/dev/null | grep 'Merged system config' || true)
[[ "$merged" == *"$DROPIN"* ]] \
    || die "podman does not read $DROPIN (is CONTAINERS_CONF set?)"
[ "$runtime" = runc ] && [ "$cgmgr" = cgroupfs ] \
    || die "podman uses runtime $runtime and cgroup manager $cgmgr despite $DROPIN"
log "config: podman answers (runtime $runtime, cgroups $cgmgr, storage $driver)"

[ "$want_base" -eq 1 ] || { log "done (base image skipped)"; exit 0; }

# 3. Base image -----------------------------------------------------------------
if [ "$force_base" -eq 0 ] && podman image exists "$BASE_IMAGE"; then
    log "base image: $BASE_IMAGE present ($(podman image inspect --format '{{.Id}}' "$BASE_IMAGE" | cut -c1-12)); nothing to do"
    exit 0
fi

if [ "$force_base" -eq 1 ] || [ ! -s "$BASE_TAR" ]; then
    log "base image: mmdebstrap $SUITE from $MIRROR (about a minute)"
    mkdir -p "$CACHE_DIR"
    tmp="$BASE_TAR.tmp.$$.tar"
    trap 'rm -f "$tmp"' EXIT
    # Docs, man pages and translations stay out of the image (and out of any
    # package installed into it later: mmdebstrap keeps these dpkg options).
    "${SUDO[@]}" mmdebstrap --quiet --variant=apt \
        --include=python3,python3-venv,python3-pip,ca-certificates \
        --aptopt='Acquire::Languages "none"' \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-exclude=/usr/share/info/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        "$SUITE" "$tmp" \
        "deb $MIRROR $SUITE main" \
        "deb $MIRROR $SUITE-updates main" \
        "deb $SECURITY_MIRROR $SUITE-security main"
    "${SUDO[@]}" chown "$(id -u):$(id -g)" "$tmp"
    mv -f "$tmp" "$BASE_TAR"
    trap - EXIT
    log "base image: cached $BASE_TAR ($(du -h "$BASE_TAR" | cut -f1))"
else
    log "base image: importing cached $BASE_TAR"
fi

podman import --quiet \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    --message "Debian $SUITE + python3, python3-venv, python3-pip, ca-certificates (mmdebstrap)" \
    "$BASE_TAR" "$BASE_IMAGE" >/dev/null
log "base image: $BASE_IMAGE imported ($(podman image inspect --format '{{.Id}}' "$BASE_IMAGE" | cut -c1-12))"

out=$(podman run --rm "$BASE_IMAGE" python3 -c 'import sys, venv, ssl; print(sys.version.split()[0])' 2>&1) \
    || die "base image smoke test failed: $out"
log "done: $BASE_IMAGE runs Python $out"
