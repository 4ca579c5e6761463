#!/usr/bin/env bash
# `make lock`: resolve exact versions with hashes, and write them where installs read them.
#   uv.lock                 the project's lock (every extra, every platform), made by uv
#   requirements/dev.txt    exported from it: what `make install` (and so CI) installs
#   requirements/app.txt    exported from it: what the image installs (no dev tools)
#   requirements/tools.txt  the tools of the deployment checks, from requirements/tools.in
# `make lock` keeps the versions already locked where pyproject.toml still allows them;
# `make lock-upgrade` (UPGRADE=1) takes the newest allowed. `--check` changes nothing and
# fails when any of the files is not what the inputs give (CI runs that).
set -euo pipefail
cd "$(dirname "$0")/.."

bash .ci/tools.sh
UV="${TOOLS_VENV:-.venv-tools}/bin/uv"
check=false
[ "${1:-}" = "--check" ] && check=true
upgrade=()
[ "${UPGRADE:-0}" = 1 ] && upgrade=(--upgrade)

export_to() { # file, extras...
  local file=$1
  shift
  "$UV" export --quiet --frozen --no-emit-project --format requirements-txt "$@" -o "$file"
}

out=requirements
if $check; then
  "$UV" lock --check --quiet
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
else
  "$UV" lock --quiet "${upgrade[@]}"
fi
export_to "$out/dev.txt" --extra dev
export_to "$out/app.txt" --extra postgres --extra mysql --extra mssql --extra otel --extra rabbitmq --extra redis
if $check; then
  cp requirements/tools.txt "$out/tools.txt"
  # A resolution from the same inputs that prefers what tools.txt already pins.
  "$UV" pip compile --quiet --universal --python-version 3.11 --generate-hashes \
    --no-header requirements/tools.in -o "$out/tools.txt"
else
  "$UV" pip compile --quiet --universal --python-version 3.11 --generate-hashes \
    --no-header "${upgrade[@]}" requirements/tools.in -o requirements/tools.txt
fi

if $check; then
  stale=()
  for file in dev.txt app.txt tools.txt; do
    # The export's header names its output file; compare what follows it.
    cmp -s <(grep -v '^#' "$out/$file") <(grep -v '^#' "requirements/$file") ||
      stale+=("requirements/$file")
  done
  if [ ${#stale[@]} -gt 0 ]; then
    echo "stale: ${stale[*]} (run: make lock)" >&2
    exit 1
  fi
  echo "[lock] uv.lock and requirements/*.txt match pyproject.toml and requirements/tools.in"
fi
