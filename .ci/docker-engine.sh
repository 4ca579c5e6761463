#!/usr/bin/env bash
# A local Docker engine for the image check (.ci/image-check.sh), from Debian's packages.
# Idempotent: installs `docker.io` and `debootstrap` with apt-get only if missing, starts
# `dockerd` only if no engine answers. There is no systemd here, so dockerd runs in the
# background with its log in /var/log/jobs-service-dockerd.log.
#
# The sandbox this runs in has no bridge/NAT set-up to rely on: the daemon runs without
# iptables and without the default bridge, and containers use `--network host`.
# Storage driver: overlay2 when the kernel and the data root allow it, else vfs (slow, but
# works anywhere).
#
# Exits 0 with the engine answering; exits 3 (and says why) when it cannot run here.
set -euo pipefail

DOCKER="${DOCKER:-/usr/bin/docker}"
LOG=/var/log/jobs-service-dockerd.log
PACKAGES=(docker.io debootstrap)

say() { printf '[docker-engine] %s\n' "$*"; }

engine_up() { "$DOCKER" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

install_packages() {
  local missing=()
  for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" ||
      missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    say "not root: cannot install ${missing[*]}"
    exit 3
  fi
  say "installing ${missing[*]} with apt-get"
  # No init system here: keep the package scripts from trying to start the daemon (with a
  # policy of our own only where there is none).
  local policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
  fi
  local install=(apt-get install -y -qq --no-install-recommends "${missing[@]}")
  if ! DEBIAN_FRONTEND=noninteractive "${install[@]}" >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive "${install[@]}" >/dev/null
  fi
  [ -z "$policy" ] || rm -f "$policy"
}

start_daemon() { # storage driver
  say "starting dockerd (storage driver $1, no iptables, no bridge)"
  # setsid: the daemon outlives this script and is not stopped with CI's process group.
  setsid dockerd --storage-driver="$1" --iptables=false --ip-masq=false --bridge=none \
    --host=unix:///var/run/docker.sock >>"$LOG" 2>&1 </dev/null &
  daemon=$!
  for _ in $(seq 1 30); do
    engine_up && return 0
    kill -0 "$daemon" 2>/dev/null || return 1
    sleep 1
  done
  return 1
}

daemon=
install_packages
if engine_up; then
  say "engine running: $("$DOCKER" version --format 'server {{.Server.Version}}')," \
    "storage $("$DOCKER" info --format '{{.Driver}}')"
  exit 0
fi
for driver in overlay2 vfs; do
  if start_daemon "$driver"; then
    say "engine running: $("$DOCKER" version --format 'server {{.Server.Version}}')," \
      "storage $driver"
    exit 0
  fi
  say "dockerd did not start with $driver; last lines of $LOG:"
  tail -n 5 "$LOG" | sed 's/^/    /'
  kill "$daemon" 2>/dev/null || true
  wait "$daemon" 2>/dev/null || true
done
say "no Docker engine can run here"
exit 3
