#!/usr/bin/env bash
# System packages the tests need beyond Python, installed with apt-get when missing:
# - unixODBC and MariaDB Connector/ODBC (the "MariaDB Unicode" driver), for the pyodbc tests
#   (`mysql+pyodbc`, see docs/sql-server.md);
# - Debian's Chromium, for the dashboard's browser tests (Playwright drives /usr/bin/chromium;
#   a test tool's own browser download is not used).
# Run by `make test` and `.ci/run`. Silent and instant when everything is there; otherwise
# installs with apt-get (as root, or through `sudo -n`). Where that is impossible it only warns:
# the tests that need them then skip (and fail with CI=true).
set -euo pipefail

DRIVER="MariaDB Unicode"
CHROMIUM=/usr/bin/chromium

odbc_registered() {
  command -v odbcinst >/dev/null 2>&1 && odbcinst -q -d 2>/dev/null | grep -qxF "[$DRIVER]"
}

missing=()
odbc_registered || missing+=(unixodbc odbc-mariadb)
[ -x "$CHROMIUM" ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "warning: no apt-get here; install ${missing[*]} (ODBC driver \"$DRIVER\" for the" \
    "pyodbc tests, Chromium for the browser tests)" >&2
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  as_root() { "$@"; }
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root() { sudo -n "$@"; }
else
  echo "warning: not root and no password-less sudo; run: sudo apt-get install" \
    "${missing[*]} (needed by the pyodbc and browser tests)" >&2
  exit 0
fi

echo "installing ${missing[*]}"
apt_install() {
  as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
if ! apt_install 2>/dev/null; then # no package lists yet, or stale ones
  as_root apt-get update -qq >/dev/null
  apt_install
fi

if ! odbc_registered; then
  echo "error: unixodbc and odbc-mariadb installed, but odbcinst lists no [$DRIVER] driver" >&2
  exit 1
fi
if [ ! -x "$CHROMIUM" ]; then
  echo "error: chromium installed, but $CHROMIUM is missing" >&2
  exit 1
fi
