#!/usr/bin/env bash
# The image check's base image, made here from Debian's packages because no container
# registry can be reached: a minimal Debian 12 root file system with its Python 3.11
# (debootstrap), imported into the local engine. Prints the image's tag on stdout.
#
# Cached twice, keyed by this recipe (the hash of this file): the image in the engine, and
# its tarball under $BASE_CACHE (default /var/cache/jobs-service-ci), outside the checkout, so
# a new engine or a new clone reuses it. Change the recipe and both are made again.
set -euo pipefail

DOCKER="${DOCKER:-/usr/bin/docker}"
CACHE="${BASE_CACHE:-/var/cache/jobs-service-ci}"
SUITE=bookworm
# python3-venv brings ensurepip (pip in the build stage); tzdata for IANA zones (cron).
INCLUDE=python3,python3-venv,tzdata,ca-certificates

key=$(sha256sum "$0" | cut -c1-12)
tag="jobs-service-base:$SUITE-$key"
tarball="$CACHE/base-$SUITE-$key.tar.gz"

say() { printf '[base-image] %s\n' "$*" >&2; }

if "$DOCKER" image inspect "$tag" >/dev/null 2>&1; then
  say "$tag is in the engine"
  echo "$tag"
  exit 0
fi

mkdir -p "$CACHE"
if [ ! -s "$tarball" ]; then
  root=$(mktemp -d "$CACHE/rootfs.XXXXXX")
  trap 'rm -rf "$root"' EXIT
  # The machine's own Debian mirror (debootstrap's default when there is none configured).
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null ||
    true)
  say "debootstrap --variant=minbase --include=$INCLUDE $SUITE (takes about a minute)"
  start=$SECONDS
  debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$root" ${mirror:+"$mirror"} \
    >"$CACHE/debootstrap.log" 2>&1 || {
    tail -n 20 "$CACHE/debootstrap.log" >&2
    exit 1
  }
  # What an image never needs: package lists and caches, documentation, man pages.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/usr/share/doc/* \
    "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*
  tar -C "$root" --numeric-owner -czf "$tarball.partial" .
  mv "$tarball.partial" "$tarball"
  say "root file system made in $((SECONDS - start)) s: $(du -h "$tarball" | cut -f1) compressed"
fi
say "docker import $tarball -> $tag"
"$DOCKER" import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' "$tarball" "$tag" >/dev/null
echo "$tag"
