#!/usr/bin/env bash
# One benchmark run: our SQL job engine on SQLite, PostgreSQL and MariaDB, then the peers
# pgqueuer and procrastinate on the same PostgreSQL, then the comparison table
# (bench/report.py), also written to bench/results/report.md.
#
#   bash bench/run.sh [--n 20000] [--reps 3] [--baseline REV] [--dramatiq] [other harness
#                     flags, e.g. --scenarios process]
#
# --dramatiq also measures, after the peers, our dramatiq backend (state on the same
# PostgreSQL) and raw dramatiq (bench/peers/bench_dramatiq.py: its own worker, the same no-op
# job), each on RabbitMQ (BENCH_AMQP_URL, default guest on 127.0.0.1:5672) and on Redis
# (127.0.0.1:6379, databases 2 and 3); the report adds their columns.
#
# --baseline REV also measures our engine at git revision REV, in the same run: REV's own src/
# and bench/ are extracted with `git archive` into /tmp/bench-baseline-<short>, and each of our
# runs is followed by the baseline's on the same database type (sqlite, sqlite-baseline,
# postgresql, postgresql-baseline, ...), on databases of its own (sqlite file
# /tmp/bench-jobs-baseline/jobs.db, PostgreSQL <db>_baseline, MariaDB <db>_baseline; override
# with BENCH_BASELINE_SQLITE_URL, BENCH_BASELINE_PG_DSN, BENCH_BASELINE_MARIADB_URL), so two
# schema versions never share tables. It runs on the project's virtualenv (this tree's
# dependencies). Results: jobs-<db>-baseline.json; the report adds a table tree vs baseline.
#
# Needs PostgreSQL on 127.0.0.1:5432 (trust auth for the postgres role: the bench role and
# database are created if missing) and MariaDB on 127.0.0.1:3306 (root without password: the
# bench_jobs database is created if missing), and the project's virtualenv (`make install`).
# Our workers: BENCH_WORKERS (default 2) x BENCH_CONCURRENCY (default 128), see bench_jobs.py;
# the peers always run with the default worker shapes of their scripts.
# Benchmark traffic goes to 127.0.0.1 only; the first run creates the peers' virtualenvs under
# /tmp with pip (package registry), before any measurement.
# Log: /tmp/bench-run.log; worker logs: /tmp/peers-<system>-<i>.log.
set -uo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
N=20000
REPS=3
BASELINE=""
DRAMATIQ=0
EXTRA=()
usage() { sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --n) N=${2:?--n needs a value}; shift 2 ;;
    --n=*) N=${1#*=}; shift ;;
    --reps) REPS=${2:?--reps needs a value}; shift 2 ;;
    --reps=*) REPS=${1#*=}; shift ;;
    --baseline) BASELINE=${2:?--baseline needs a git revision}; shift 2 ;;
    --baseline=*) BASELINE=${1#*=}; shift ;;
    --dramatiq) DRAMATIQ=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) EXTRA+=("$1"); shift ;;
  esac
done
[[ $N =~ ^[0-9]+$ && $REPS =~ ^[0-9]+$ && $N -gt 0 && $REPS -gt 0 ]] || {
  echo "--n and --reps take positive integers" >&2; exit 2; }

export BENCH_PG_DSN=${BENCH_PG_DSN:-postgresql://bench:bench@127.0.0.1:5432/bench}
export BENCH_MARIADB_URL=${BENCH_MARIADB_URL:-mysql+pymysql://root@127.0.0.1:3306/bench_jobs}
export BENCH_SQLITE_URL=${BENCH_SQLITE_URL:-sqlite:////tmp/bench-jobs/jobs.db}
export BENCH_REDIS_URL=redis://127.0.0.1:6379/0   # the harness reads Redis counters if any
export BENCH_RESULTS_DIR=${BENCH_RESULTS_DIR:-$BENCH/results}
RESULTS=$BENCH_RESULTS_DIR
LOG=${BENCH_LOG:-/tmp/bench-run.log}
STEP_TIMEOUT=${BENCH_STEP_TIMEOUT:-3600}
OUR_WORKERS=${BENCH_WORKERS:-2}
OUR_CONCURRENCY=${BENCH_CONCURRENCY:-128}
unset PYTHONPATH  # the harness sets it for the workers (procrastinate imports its app by name)

if [ -x "$ROOT/.venv/bin/python" ]; then PY=$ROOT/.venv/bin/python; else PY=$(command -v python3); fi
PEER_PY=$(command -v python3)
: > "$LOG"
say() { echo "$*" | tee -a "$LOG"; }
die() { say "run.sh: $*"; exit 1; }

url_part() {  # url_part URL host|port|user|password|db
  python3 - "$1" "$2" <<'EOF'
import sys
import urllib.parse as u

p = u.urlsplit(sys.argv[1])
print({"host": p.hostname or "", "port": p.port or "", "user": u.unquote(p.username or ""),
       "password": u.unquote(p.password or ""), "db": p.path.lstrip("/")}[sys.argv[2]])
EOF
}
url_with_db() {  # url_with_db URL DB: the same URL naming database DB
  python3 - "$1" "$2" <<'EOF'
import sys
import urllib.parse as u

print(u.urlsplit(sys.argv[1])._replace(path="/" + sys.argv[2]).geturl())
EOF
}
loopback() {  # loopback NAME URL: refuse any database address but 127.0.0.1
  local host; host=$(url_part "$2" host)
  [ "$host" = "127.0.0.1" ] || die "$1 must point at 127.0.0.1, not '$host'"
}

# ------------------------------------------------------------------ preflight
say "### preflight ($(date '+%F %T')): n=$N reps=$REPS ${EXTRA[*]:-}"
loopback BENCH_PG_DSN "$BENCH_PG_DSN"
loopback BENCH_MARIADB_URL "$BENCH_MARIADB_URL"
[ -n "${BENCH_JOBS_PG_URL:-}" ] && loopback BENCH_JOBS_PG_URL "$BENCH_JOBS_PG_URL"
"$PY" -c "import infrastructure.jobs.sql.store, psycopg, pymysql" 2>/dev/null \
  || die "$PY cannot import the project with its drivers: run 'make install' first"
[ -n "$PEER_PY" ] || die "python3 not found (the peers build their virtualenvs with it)"
command -v psql >/dev/null || die "psql not found"

PG_PORT=$(url_part "$BENCH_PG_DSN" port); PG_PORT=${PG_PORT:-5432}
PG_DB=$(url_part "$BENCH_PG_DSN" db)
MARIADB_PORT=$(url_part "$BENCH_MARIADB_URL" port); MARIADB_PORT=${MARIADB_PORT:-3306}
(exec 3<>"/dev/tcp/127.0.0.1/$PG_PORT") 2>/dev/null || die "PostgreSQL is not listening on 127.0.0.1:$PG_PORT"
(exec 3<>"/dev/tcp/127.0.0.1/$MARIADB_PORT") 2>/dev/null || die "MariaDB is not listening on 127.0.0.1:$MARIADB_PORT"
if [ "$DRAMATIQ" = 1 ]; then
  [ -n "${BENCH_AMQP_URL:-}" ] && loopback BENCH_AMQP_URL "$BENCH_AMQP_URL"
  (exec 3<>"/dev/tcp/127.0.0.1/5672") 2>/dev/null || [ -n "${BENCH_AMQP_URL:-}" ] \
    || die "--dramatiq: RabbitMQ is not listening on 127.0.0.1:5672"
  (exec 3<>"/dev/tcp/127.0.0.1/6379") 2>/dev/null || die "--dramatiq: Redis is not listening on 127.0.0.1:6379"
fi

# --baseline REV: REV's own src/ and bench/ (its bench_jobs.py matches its engine's API), run on
# databases of their own so that two schema versions never meet in one set of tables
PG_DSNS=("$BENCH_PG_DSN")
MARIADB_URLS=("$BENCH_MARIADB_URL")
BASE_DIR=""
BASE_ENV=()
if [ -n "$BASELINE" ]; then
  BASE_REV=$(git -C "$ROOT" rev-parse --verify --quiet "$BASELINE^{commit}") \
    || die "--baseline $BASELINE: not a commit of $ROOT"
  BASE_SHORT=$(git -C "$ROOT" rev-parse --short "$BASE_REV")
  for path in src bench/bench_jobs.py bench/peers/common.py; do
    git -C "$ROOT" cat-file -e "$BASE_REV:$path" 2>/dev/null \
      || die "--baseline $BASELINE: $BASE_SHORT has no $path (it predates the benchmark)"
  done
  git -C "$ROOT" grep -qF '"--tag"' "$BASE_REV" -- bench/peers/common.py \
    || die "--baseline $BASELINE: the harness of $BASE_SHORT has no --tag option"
  BASE_SQLITE_URL=${BENCH_BASELINE_SQLITE_URL:-sqlite:////tmp/bench-jobs-baseline/jobs.db}
  BASE_PG_DSN=${BENCH_BASELINE_PG_DSN:-$(url_with_db "$BENCH_PG_DSN" "${PG_DB}_baseline")}
  MARIADB_DB=$(url_part "$BENCH_MARIADB_URL" db)
  BASE_MARIADB_URL=${BENCH_BASELINE_MARIADB_URL:-$(url_with_db "$BENCH_MARIADB_URL" "${MARIADB_DB}_baseline")}
  loopback BENCH_BASELINE_PG_DSN "$BASE_PG_DSN"
  loopback BENCH_BASELINE_MARIADB_URL "$BASE_MARIADB_URL"
  [ "$BASE_SQLITE_URL" != "$BENCH_SQLITE_URL" ] || die "the baseline needs a SQLite file of its own"
  [ "$(url_part "$BASE_PG_DSN" db)" != "$PG_DB" ] || die "the baseline needs a PostgreSQL database of its own"
  [ "$(url_part "$BASE_MARIADB_URL" db)" != "$MARIADB_DB" ] || die "the baseline needs a MariaDB database of its own"
  PG_DSNS+=("$BASE_PG_DSN")
  MARIADB_URLS+=("$BASE_MARIADB_URL")

  BASE_DIR=/tmp/bench-baseline-$BASE_SHORT
  rm -rf "$BASE_DIR" && mkdir -p "$BASE_DIR" || die "cannot create $BASE_DIR"
  git -C "$ROOT" archive "$BASE_REV" src bench | tar -x -C "$BASE_DIR" \
    || die "cannot extract src/ and bench/ of $BASE_SHORT into $BASE_DIR"
  BASE_ENV=(PYTHONPATH="$BASE_DIR/src" BENCH_ENGINE_GIT="$BASE_SHORT (baseline $BASELINE, git archive)"
            BENCH_SQLITE_URL="$BASE_SQLITE_URL" BENCH_PG_DSN="$BASE_PG_DSN"
            BENCH_MARIADB_URL="$BASE_MARIADB_URL")
  if [ -n "${BENCH_JOBS_PG_URL:-}" ]; then
    BASE_ENV+=(BENCH_JOBS_PG_URL="$(url_with_db "$BENCH_JOBS_PG_URL" "$(url_part "$BASE_PG_DSN" db)")")
  fi
  FROM=$(env PYTHONPATH="$BASE_DIR/src" "$PY" -c \
    "import infrastructure.jobs.sql.store as s; print(s.__file__)" 2>/dev/null)
  [[ $FROM == "$BASE_DIR/src/"* ]] || die "the baseline engine is not imported from $BASE_DIR/src (got '$FROM')"
  env "${BASE_ENV[@]}" "$PY" "$BASE_DIR/bench/bench_jobs.py" --help >/dev/null 2>&1 \
    || die "$BASE_DIR/bench/bench_jobs.py does not start with $PY (its dependencies?)"
  say "### baseline engine: $BASE_DIR (git archive of $BASELINE = $BASE_REV); databases:" \
    "$BASE_SQLITE_URL, $(url_part "$BASE_PG_DSN" db) (PostgreSQL), $(url_part "$BASE_MARIADB_URL" db) (MariaDB)"
fi

pg_admin() {  # pg_admin PORT PSQL-ARGS...
  local port=$1; shift
  psql -h 127.0.0.1 -p "$port" -U "${BENCH_PG_ADMIN:-postgres}" -d postgres -v ON_ERROR_STOP=1 "$@"
}
pg_ensure() {  # pg_ensure DSN: create the role and the database of DSN if missing
  local port user password db
  port=$(url_part "$1" port); port=${port:-5432}
  user=$(url_part "$1" user); password=$(url_part "$1" password); db=$(url_part "$1" db)
  if [ "$(pg_admin "$port" -Atc "SELECT 1 FROM pg_roles WHERE rolname = '$user'")" != 1 ]; then
    say "creating PostgreSQL role $user"
    pg_admin "$port" -qc "CREATE ROLE \"$user\" LOGIN PASSWORD '$password' SUPERUSER" || die "cannot create role $user"
  fi
  if [ "$(pg_admin "$port" -Atc "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]; then
    say "creating PostgreSQL database $db"
    pg_admin "$port" -qc "CREATE DATABASE \"$db\" OWNER \"$user\"" || die "cannot create database $db"
  fi
}
for dsn in "${PG_DSNS[@]}"; do pg_ensure "$dsn"; done
"$PY" - "${MARIADB_URLS[@]}" <<'EOF' || die "cannot create the MariaDB databases"
import sys

import sqlalchemy as sa

for arg in sys.argv[1:]:
    url = sa.make_url(arg)
    server = sa.create_engine(url.set(database=""))
    with server.begin() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE IF NOT EXISTS `{url.database}`")
    server.dispose()
    print(f"MariaDB database {url.database} ready")
EOF

read -r LOAD1 _ < /proc/loadavg
if awk -v l="$LOAD1" -v c="$(nproc)" 'BEGIN { exit !(l > c / 2) }'; then
  say "WARNING: load average $LOAD1 on $(nproc) CPUs before the run: other work will add noise"
fi

say "### peer virtualenvs (pip, first run only)"
PEER_SETUP=(pgqueuer procrastinate)
[ "$DRAMATIQ" = 1 ] && PEER_SETUP+=(dramatiq)
for peer in "${PEER_SETUP[@]}"; do
  "$PEER_PY" "$BENCH/peers/bench_$peer.py" --setup-only 2>&1 | grep -v '^WARNING: Location' | tee -a "$LOG"
  [ "${PIPESTATUS[0]}" -eq 0 ] || die "could not set up the $peer virtualenv"
done

# previous results go to results/previous/, stale worker logs away
mkdir -p "$RESULTS/rss" "$RESULTS/previous/rss"
for f in "$RESULTS"/*.json "$RESULTS"/report.md "$RESULTS"/engine-src.diff; do
  [ -e "$f" ] && mv -f "$f" "$RESULTS/previous/"
done
for f in "$RESULTS"/rss/*.json; do [ -e "$f" ] && mv -f "$f" "$RESULTS/previous/rss/"; done
rm -f /tmp/peers-jobs-*.log /tmp/peers-pgqueuer*.log /tmp/peers-procrastinate*.log /tmp/peers-dramatiq*.log

# Others may change src/ while this runs: ours runs on a copy taken now, so the three
# databases measure the same code (BENCH_SNAPSHOT=0: the working tree, as it is at each step).
OUR_ENV=()
if [ "${BENCH_SNAPSHOT:-1}" != 0 ]; then
  SNAP=/tmp/bench-engine-src
  rm -rf "$SNAP" && mkdir -p "$SNAP"
  (cd "$ROOT" && tar --exclude=__pycache__ -cf - src) | tar -xf - -C "$SNAP" || die "cannot copy src/"
  GIT_STATE=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  CHANGED=$(git -C "$ROOT" status --porcelain -- src 2>/dev/null | wc -l)
  [ "$CHANGED" -gt 0 ] && GIT_STATE="$GIT_STATE + $CHANGED uncommitted change(s) under src/"
  git -C "$ROOT" diff HEAD -- src > "$RESULTS/engine-src.diff" 2>/dev/null
  OUR_ENV=(PYTHONPATH="$SNAP/src" BENCH_ENGINE_GIT="$GIT_STATE, copied $(date '+%F %T')")
  say "### engine snapshot: $SNAP/src ($GIT_STATE; tracked changes in results/engine-src.diff)"
fi

# ------------------------------------------------------------------ the runs
FAILED=()
STEP=0
TOTAL=5
[ -n "$BASE_DIR" ] && TOTAL=8
[ "$DRAMATIQ" = 1 ] && TOTAL=$((TOTAL + 4))
T_START=$SECONDS
step() {  # step NAME CMD...: run one system under the RSS sampler, with progress lines
  local name=$1; shift
  STEP=$((STEP + 1))
  say ""
  say "### [$STEP/$TOTAL] $name: started $(date +%T), $((SECONDS - T_START)) s into the run"
  local t0=$SECONDS
  timeout "$STEP_TIMEOUT" python3 "$BENCH/rss_watch.py" --out "$RESULTS/rss/$name.json" -- "$@" 2>&1 \
    | grep --line-buffered -v '^WARNING: Location' | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  say "### [$STEP/$TOTAL] $name: finished in $((SECONDS - t0)) s, exit status $rc"
  [ "$rc" -eq 0 ] || FAILED+=("$name")
}
HARNESS_ARGS=(--n "$N" --reps "$REPS" "${EXTRA[@]}")
for db in sqlite postgresql mariadb; do
  step "jobs-$db" env "${OUR_ENV[@]}" BENCH_WORKERS="$OUR_WORKERS" \
    BENCH_CONCURRENCY="$OUR_CONCURRENCY" "$PY" "$BENCH/bench_jobs.py" --db "$db" "${HARNESS_ARGS[@]}"
  # the baseline right after, on the same database type, so that noise hits both alike
  if [ -n "$BASE_DIR" ]; then
    step "jobs-$db-baseline" env -u BENCH_JOBS_PG_URL "${BASE_ENV[@]}" BENCH_WORKERS="$OUR_WORKERS" \
      BENCH_CONCURRENCY="$OUR_CONCURRENCY" "$PY" "$BASE_DIR/bench/bench_jobs.py" --db "$db" \
      "${HARNESS_ARGS[@]}" --tag baseline
  fi
done
for peer in pgqueuer procrastinate; do
  step "$peer" env -u BENCH_WORKERS -u BENCH_CONCURRENCY -u BENCH_BATCH \
    "$PEER_PY" "$BENCH/peers/bench_$peer.py" "${HARNESS_ARGS[@]}"
done
if [ "$DRAMATIQ" = 1 ]; then
  for broker in rabbitmq redis; do
    step "jobs-postgresql-dramatiq-$broker" env "${OUR_ENV[@]}" BENCH_WORKERS="$OUR_WORKERS" \
      BENCH_CONCURRENCY="$OUR_CONCURRENCY" "$PY" "$BENCH/bench_jobs.py" --db postgresql \
      --broker "$broker" "${HARNESS_ARGS[@]}"
    step "dramatiq-$broker" env -u BENCH_WORKERS -u BENCH_CONCURRENCY -u BENCH_BATCH \
      BENCH_DRAMATIQ_BROKER="$broker" "$PEER_PY" "$BENCH/peers/bench_dramatiq.py" "${HARNESS_ARGS[@]}"
  done
fi

# ------------------------------------------------------------------ the table
say ""
say "### report ($(date '+%F %T'), whole run $((SECONDS - T_START)) s)"
say ""
"$PY" "$BENCH/report.py" --results "$RESULTS" | tee "$RESULTS/report.md" | tee -a "$LOG"
if [ ${#FAILED[@]} -gt 0 ]; then
  say ""
  say "failed: ${FAILED[*]} (see $LOG and /tmp/peers-*.log)"
  exit 1
fi
