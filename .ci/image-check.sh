#!/usr/bin/env bash
# The image, for real: build docker/Dockerfile on a Debian 12 base made here (no registry can
# be reached), with the locked wheels downloaded outside and no network during the build; then
# run it as it runs in Kubernetes (UID 10001, read-only root file system, /tmp in memory, no
# capabilities) against the host's PostgreSQL (--network host), in a database of its own:
#   1. `serve` with migrations off answers /health/ready 503 while the schema is behind,
#   2. the one-shot `migrate` container upgrades it, and `serve` turns ready (200),
#   3. a job enqueued through POST /api/jobs with an API key succeeds,
#   4. `docker stop` while a job runs: the job finishes within the grace period, the process
#      exits 0, and the job is `succeeded`,
#   5. a new `serve` on the migrated database: time from `docker run` to ready, and the
#      image's HEALTHCHECK turns healthy,
#   6. `worker` runs a job, passes the image's health check, and stops on SIGTERM.
# Prints the image's size, the times to ready and the drain time.
#
# Needs root (apt-get, dockerd) or an engine that already runs. JOBS_IMAGE_CHECK=off skips it
# with a note; an engine that cannot run here is an error unless JOBS_IMAGE_CHECK=optional.
set -euo pipefail
cd "$(dirname "$0")/.."

DOCKER="${DOCKER:-/usr/bin/docker}"
export DOCKER DOCKER_BUILDKIT=1
PG_HOST="${IMAGE_CHECK_PG_HOST:-127.0.0.1}"
PG_PORT="${IMAGE_CHECK_PG_PORT:-5432}"
PG_USER="${IMAGE_CHECK_PG_USER:-postgres}"
DATABASE=jobs_image_check
PORT="${IMAGE_CHECK_PORT:-18431}"
TAG=jobs-service:ci
GRACE=20
PREFIX="jobs-image-check-$$"

step() { printf -- '--- %s\n' "$*"; }
fail() {
  echo "error: $*" >&2
  for name in $("$DOCKER" ps -a --filter "name=$PREFIX" --format '{{.Names}}' 2>/dev/null); do
    echo "--- last log lines of $name" >&2
    "$DOCKER" logs --tail 15 "$name" >&2 2>&1 || true
  done
  exit 1
}
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }
json_get() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

case "${JOBS_IMAGE_CHECK:-on}" in
off)
  echo "image check skipped (JOBS_IMAGE_CHECK=off)"
  exit 0
  ;;
esac

step "Docker engine (.ci/docker-engine.sh)"
if ! bash .ci/docker-engine.sh; then
  [ "${JOBS_IMAGE_CHECK:-on}" = optional ] && {
    echo "image check NOT RUN: no Docker engine here (JOBS_IMAGE_CHECK=optional)"
    exit 0
  }
  fail "no Docker engine can run here (see above); JOBS_IMAGE_CHECK=off skips this check"
fi

step "base image: Debian 12 minbase with Python 3.11 (.ci/base-image.sh, cached)"
base=$(bash .ci/base-image.sh)

step "wheels for requirements/app.txt and the build backend, outside the build"
key=$(cat requirements/app.txt pyproject.toml .ci/image-only-requirements.py | sha256sum | cut -c1-16)
if [ "$(cat docker/wheelhouse/.key 2>/dev/null)" != "$key" ]; then
  rm -f docker/wheelhouse/*.whl docker/wheelhouse/.key
  start=$(now)
  python3 -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
    --require-hashes -r requirements/app.txt -d docker/wheelhouse 2>&1 | grep -v 'is ignored' || true
  # pip evaluates markers for this machine's Python; the image has Debian 12's 3.11.2, which
  # needs a few more (e.g. async-timeout for python_full_version < '3.11.3').
  image_only=$(mktemp)
  python3 .ci/image-only-requirements.py requirements/app.txt 3.11.2 >"$image_only"
  if [ -s "$image_only" ]; then
    python3 -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
      --require-hashes --no-deps -r "$image_only" -d docker/wheelhouse 2>&1 \
      | grep -v 'is ignored' || true
  fi
  rm -f "$image_only"
  # The project's build backend, which the build stage needs to build the project's wheel.
  backend=$(python3 -c 'import tomllib; print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))')
  # shellcheck disable=SC2086 # one argument per requirement
  python3 -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
    -d docker/wheelhouse $backend 2>&1 | grep -v 'is ignored' || true
  echo "$key" >docker/wheelhouse/.key
  echo "    downloaded in $(since "$start") s"
fi
echo "    $(find docker/wheelhouse -name '*.whl' | wc -l) wheels, $(du -sh docker/wheelhouse | cut -f1)"

step "docker build (base $base, no network)"
start=$(now)
"$DOCKER" build --quiet --network none -f docker/Dockerfile -t "$TAG" \
  --build-arg BASE_IMAGE="$base" \
  --build-arg VERSION="$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')" \
  --build-arg REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
  --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" . >/dev/null || fail "docker build failed"
size=$("$DOCKER" image inspect "$TAG" --format '{{.Size}}')
base_size=$("$DOCKER" image inspect "$base" --format '{{.Size}}')
user=$("$DOCKER" image inspect "$TAG" --format '{{.Config.User}}')
echo "    built in $(since "$start") s; image $((size / 1000000)) MB" \
  "(base $((base_size / 1000000)) MB + $(((size - base_size) / 1000000)) MB); user $user;" \
  "labels: $("$DOCKER" image inspect "$TAG" --format '{{index .Config.Labels "org.opencontainers.image.version"}} {{index .Config.Labels "org.opencontainers.image.revision"}}' | cut -c1-20)"
[ "$user" = "10001:10001" ] || fail "the image's user is '$user', not 10001:10001"

step "a database of its own: $DATABASE on $PG_HOST:$PG_PORT"
psql_do() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -v ON_ERROR_STOP=1 "$@"; }
psql_do -c "DROP DATABASE IF EXISTS $DATABASE WITH (FORCE)" -c "CREATE DATABASE $DATABASE" ||
  fail "cannot create the database (is PostgreSQL up? bash .ci/services.sh)"
DB_URL="postgresql+psycopg://$PG_USER@$PG_HOST:$PG_PORT/$DATABASE"

cleanup() {
  for name in $("$DOCKER" ps -a --filter "name=$PREFIX" --format '{{.Names}}' 2>/dev/null); do
    "$DOCKER" rm -f "$name" >/dev/null 2>&1 || true
  done
  psql_do -c "DROP DATABASE IF EXISTS $DATABASE WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# As in Kubernetes: non-root, read-only root, /tmp in memory, nothing added to the kernel's
# defaults; the host's network for the host's PostgreSQL.
run_flags=(--network host --read-only --tmpfs /tmp:size=64m --cap-drop ALL
  --security-opt no-new-privileges -e APP_DB__URL="$DB_URL" -e APP_HTTP__PORT="$PORT"
  -e APP_JOBS__SHUTDOWN_GRACE_SECONDS="$GRACE" -e APP_JOBS__SAMPLE_EVERY_MINUTE=false)

step "API key (jobs-service api-key create, in the image)"
created=$("$DOCKER" run --rm "${run_flags[@]}" "$TAG" api-key create --name image-check --scope write)
api_key=$(sed -n 's/^API key.*: //p' <<<"$created")
api_keys="[$(sed -n 's/^add to the JSON list in APP_AUTH__API_KEYS: //p' <<<"$created")]"
[ -n "$api_key" ] || fail "api-key create printed no key: $created"
run_flags+=(-e APP_AUTH__API_KEYS="$api_keys")

ready_code() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health/ready" || true; }
wait_ready() { # seconds; echoes nothing, fails on time-out
  local deadline=$((SECONDS + $1))
  until [ "$(ready_code)" = 200 ]; do
    [ $SECONDS -lt "$deadline" ] || return 1
    sleep 0.1
  done
}
api() { # method path [json]
  curl -s -f -X "$1" "http://127.0.0.1:$PORT$2" -H "X-API-Key: $api_key" \
    -H 'Content-Type: application/json' ${3:+-d "$3"}
}
wait_state() { # job id, state, seconds
  local deadline=$((SECONDS + $3)) state=
  while [ $SECONDS -lt "$deadline" ]; do
    state=$(api GET "/api/jobs/$1" | json_get '["state"]')
    [ "$state" = "$2" ] && return 0
    case "$state" in failed | deleted) break ;; esac
    sleep 0.2
  done
  fail "job $1 is $state, not $2"
}

step "1. serve with migrations off, on an empty database: /health/ready answers 503"
serve="$PREFIX-serve"
"$DOCKER" run -d --name "$serve" "${run_flags[@]}" -e APP_DB__MIGRATE_ON_START=false "$TAG" \
  serve >/dev/null
for _ in $(seq 1 100); do
  code=$(ready_code)
  [ "$code" = 000 ] || break
  sleep 0.1
done
body=$(curl -s "http://127.0.0.1:$PORT/health/ready")
[ "$code" = 503 ] || fail "/health/ready answered $code before the migration, not 503"
echo "    503 $body"
[ "$("$DOCKER" exec "$serve" id -u)" = 10001 ] || fail "serve does not run as UID 10001"
[ "$("$DOCKER" inspect "$serve" --format '{{.HostConfig.ReadonlyRootfs}}')" = true ] ||
  fail "the root file system is writable"
if "$DOCKER" exec "$serve" touch /opt/venv/probe 2>/dev/null; then
  fail "wrote to the root file system"
fi
echo "    runs as UID 10001 on a read-only root file system (a write to /opt/venv fails)"

step "2. migrate (one-shot container), then serve turns ready"
start=$(now)
"$DOCKER" run --rm --name "$PREFIX-migrate" "${run_flags[@]}" "$TAG" migrate 2>/dev/null |
  sed 's/^/    migrate: /' || fail "migrate failed"
migrated=$(now)
wait_ready 30 || fail "serve did not turn ready within 30 s of the migration"
echo "    migrated in $(python3 -c "print(f'{$migrated - $start:.1f}')") s; ready $(since "$migrated") s after"

step "3. a job through POST /api/jobs (X-API-Key, scope write)"
job=$(api POST /api/jobs '{"handler": "HeartbeatJobs.beat"}' | json_get '["id"]') ||
  fail "POST /api/jobs failed"
wait_state "$job" succeeded 30
echo "    job $job succeeded"

step "4. docker stop while a job runs: it drains within the grace period ($GRACE s)"
# A real handler that takes a while: the temp-file cleanup over 60,000 stale files in /tmp.
"$DOCKER" exec "$serve" python3 -c "
import os
d = '/tmp/jobs-service'
os.makedirs(d, exist_ok=True)
for i in range(60000):
    p = f'{d}/stale-{i:05d}'
    open(p, 'w').close()
    os.utime(p, (0, 0))
"
job=$(api POST /api/jobs '{"handler": "TempFileJobs.cleanup", "kwargs": {"older_than_hours": 1}}' |
  json_get '["id"]')
wait_state "$job" processing 30
start=$(now)
"$DOCKER" stop -t $((GRACE + 15)) "$serve" >/dev/null
drain=$(since "$start")
exit_code=$("$DOCKER" inspect "$serve" --format '{{.State.ExitCode}}')
state=$("$DOCKER" run --rm "${run_flags[@]}" "$TAG" jobs show "$job" --json | json_get '["state"]')
"$DOCKER" logs "$serve" 2>&1 | grep -E '"(stopping|job runtime|Shutting down|Finished server)' |
  python3 -c "import json,sys; [print('    log:', json.loads(l)['event']) for l in sys.stdin]" || true
echo "    docker stop took $drain s; exit code $exit_code; the job is $state"
[ "$state" = succeeded ] || fail "the running job was not drained: it is $state"
python3 -c "import sys; sys.exit(0 if float('$drain') < $GRACE else 1)" ||
  fail "the stop took $drain s, more than the grace period ($GRACE s)"
case "$exit_code" in 0 | 143) ;; *) fail "serve exited with $exit_code" ;; esac
"$DOCKER" rm "$serve" >/dev/null

step "5. time to ready: a new serve on the migrated database"
start=$(now)
"$DOCKER" run -d --name "$PREFIX-serve2" "${run_flags[@]}" "$TAG" serve >/dev/null
wait_ready 60 || fail "serve did not turn ready within 60 s"
to_ready=$(since "$start")
echo "    docker run -> /health/ready 200 in $to_ready s"
health=""
for _ in $(seq 1 30); do # the image's HEALTHCHECK: first run after its 10 s interval
  health=$("$DOCKER" inspect "$PREFIX-serve2" --format '{{.State.Health.Status}}')
  [ "$health" = starting ] || break
  sleep 1
done
[ "$health" = healthy ] || fail "the image's HEALTHCHECK says $health"
echo "    the image's HEALTHCHECK: $health"
"$DOCKER" stop -t 30 "$PREFIX-serve2" >/dev/null

step "6. worker: starts, runs a job, stops on SIGTERM"
"$DOCKER" run -d --name "$PREFIX-worker" "${run_flags[@]}" "$TAG" worker >/dev/null
job=$("$DOCKER" run --rm "${run_flags[@]}" "$TAG" jobs enqueue HeartbeatJobs.beat 2>/dev/null | awk '{print $1}')
deadline=$((SECONDS + 30))
until [ "$("$DOCKER" run --rm "${run_flags[@]}" "$TAG" jobs show "$job" --json |
  json_get '["state"]')" = succeeded ]; do
  [ $SECONDS -lt $deadline ] || fail "the worker did not run job $job"
  sleep 0.5
done
"$DOCKER" exec "$PREFIX-worker" python3 /opt/healthcheck.py ||
  fail "the image's HEALTHCHECK fails for a worker"
start=$(now)
"$DOCKER" stop -t 30 "$PREFIX-worker" >/dev/null
echo "    job $job succeeded on the worker; stopped in $(since "$start") s, exit code" \
  "$("$DOCKER" inspect "$PREFIX-worker" --format '{{.State.ExitCode}}')"

echo "image check passed: image $((size / 1000000)) MB, ready in $to_ready s, drain $drain s"
