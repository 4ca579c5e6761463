#!/usr/bin/env bash
# System packages the tests need beyond Python: unixODBC and MariaDB Connector/ODBC (the
# "MariaDB Unicode" driver), for the pyodbc tests (`mysql+pyodbc`, see docs/sql-server.md).
# Run by `make test` and `.ci/run`. Silent and instant when the driver is registered; otherwise
# installs Debian's `unixodbc` and `odbc-mariadb` with apt-get (as root, or through `sudo -n`).
# Where that is impossible it only warns: the pyodbc tests then skip (and fail with CI=true).
set -euo pipefail

DRIVER="MariaDB Unicode"
PACKAGES=(unixodbc odbc-mariadb)

registered() {
  command -v odbcinst >/dev/null 2>&1 && odbcinst -q -d 2>/dev/null | grep -qxF "[$DRIVER]"
}

registered && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "warning: no apt-get here; install unixODBC and MariaDB Connector/ODBC (driver" \
    "\"$DRIVER\") for the pyodbc tests" >&2
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  as_root() { "$@"; }
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root() { sudo -n "$@"; }
else
  echo "warning: not root and no password-less sudo; run: sudo apt-get install" \
    "${PACKAGES[*]} (needed by the pyodbc tests)" >&2
  exit 0
fi

echo "installing ${PACKAGES[*]} (ODBC driver \"$DRIVER\" for the pyodbc tests)"
export DEBIAN_FRONTEND=noninteractive
apt_install() {
  as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
}
if ! apt_install 2>/dev/null; then # no package lists yet, or stale ones
  as_root apt-get update -qq >/dev/null
  apt_install
fi

if ! registered; then
  echo "error: ${PACKAGES[*]} installed, but odbcinst lists no [$DRIVER] driver" >&2
  exit 1
fi
