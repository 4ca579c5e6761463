#!/usr/bin/env bash
# The tools of `make lock` and the deployment checks (uv, kubectl with its kustomize,
# kubernetes-validate, checkov, hadolint, check-jsonschema), in their own virtualenv
# (.venv-tools, or $TOOLS_VENV) so the service's install stays lean. Installed from
# requirements/tools.txt, exact versions with hashes; reinstalled only when that lock changes
# (the virtualenv keeps the lock's hash), so CI reuses it between runs.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${TOOLS_VENV:-.venv-tools}"
LOCK=requirements/tools.txt
STAMP="$VENV/.lock-sha256"
want=$(sha256sum "$LOCK" | cut -d' ' -f1)

if [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
echo "[tools] installing $LOCK into $VENV (a minute or two, once per lock)"
python3 -m venv "$VENV"
# (This machine's pip configuration names local indexes that may be absent: pip says so once
# per package, which is noise here.)
"$VENV/bin/python" -m pip install --quiet --require-hashes --no-deps -r "$LOCK" 2>&1 |
  { grep -v 'is ignored: it is neither a file nor a directory' || true; }
echo "$want" >"$STAMP"
