#!/usr/bin/env bash
# Offline checks of the deployment files (no engine, no cluster): the lock is current,
# hadolint on docker/Dockerfile (0 errors), compose.yaml against the compose specification,
# each Kubernetes overlay rendered by kustomize and validated strictly against the
# Kubernetes schemas, and checkov's policies with the security checks required to pass.
# Each validator is also shown a broken file, which it must reject (a validator that
# accepts anything would pass too). Tools: .ci/tools.sh (.venv-tools, locked with hashes).
set -euo pipefail
cd "$(dirname "$0")/.."

bash .ci/tools.sh
T="${TOOLS_VENV:-.venv-tools}/bin"
K8S_VERSIONS=(1.30.0 1.37.0) # the oldest and the newest Kubernetes these manifests target
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step() { printf -- '--- %s\n' "$*"; }
must_reject() { # what, command...
  local what=$1
  shift
  if "$@" >/dev/null 2>&1; then
    echo "error: the validator accepted $what" >&2
    exit 1
  fi
  echo "    (rejects $what, as it should)"
}

step "lock: uv.lock and requirements/*.txt match pyproject.toml (uv $("$T/uv" --version | cut -d' ' -f2))"
bash .ci/lock.sh --check

step "hadolint $("$T/hadolint" --version | grep -o '[0-9][0-9.]*$') docker/Dockerfile"
"$T/hadolint" --no-color --failure-threshold error docker/Dockerfile
echo "    0 errors ($("$T/hadolint" --no-fail docker/Dockerfile | grep -c . || true) findings in all)"
printf 'FROM python:3.11\nWORKDIR app\nADD app.py /app/\nCMD ["python", "app.py"]\n' \
  >"$work/Dockerfile.bad"
must_reject "a Dockerfile with errors" "$T/hadolint" --failure-threshold error "$work/Dockerfile.bad"

step "compose.yaml against the compose specification (check-jsonschema, vendor.compose-spec)"
"$T/check-jsonschema" --builtin-schema vendor.compose-spec compose.yaml
sed 's/^    read_only: true/    read_only: maybe/; s/^  stop_grace_period:/  stop_grace_periods:/' \
  compose.yaml >"$work/compose.bad.yaml"
must_reject "a compose file with a misspelt key" \
  "$T/check-jsonschema" --builtin-schema vendor.compose-spec "$work/compose.bad.yaml"

# prod with the optional ServiceMonitor component switched on, as docs/deployment.md says.
cp -r k8s "$work/k8s"
sed -i 's|^  # - ../../components/servicemonitor.*|  - ../../components/servicemonitor|' \
  "$work/k8s/overlays/prod/kustomization.yaml"
renders=(dev:k8s/overlays/dev prod:k8s/overlays/prod prod+servicemonitor:"$work/k8s/overlays/prod")
for entry in "${renders[@]}"; do
  name=${entry%%:*}
  dir=${entry#*:}
  out="$work/$name.yaml"
  step "kubectl kustomize ($("$T/kubectl" version --client -o json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["kustomizeVersion"])')) $name"
  "$T/kubectl" kustomize "$dir" >"$out"
  echo "    $(grep -c '^kind:' "$out") resources: $(grep '^kind:' "$out" | cut -d' ' -f2 | sort |
    uniq -c | awk '{printf "%s%s x%s", sep, $2, $1; sep=", "}')"
  for version in "${K8S_VERSIONS[@]}"; do
    step "kubernetes-validate --strict -k $version $name"
    "$T/kubernetes-validate" --strict --quiet -k "$version" "$out"
  done
  step "checkov $name"
  "$T/checkov" --config-file k8s/checkov.yaml -f "$out" -o json 2>/dev/null |
    python3 .ci/checkov_report.py "$name"
done
step "the ServiceMonitor (a CRD: no schema above) against the Service it scrapes"
"$T/python" .ci/servicemonitor_check.py "$work/prod+servicemonitor.yaml"
sed 's/^    port: http$/    port: web/' "$work/prod+servicemonitor.yaml" >"$work/monitor.bad.yaml"
must_reject "a ServiceMonitor scraping a port the Service lacks" \
  "$T/python" .ci/servicemonitor_check.py "$work/monitor.bad.yaml"

step "the validators reject broken manifests"
sed 's/^  replicas: 3$/  replicas: 3\n  replica: 3/' "$work/prod.yaml" >"$work/prod.bad.yaml"
must_reject "a Deployment with an unknown field" \
  "$T/kubernetes-validate" --strict --quiet "$work/prod.bad.yaml"
sed 's/^          readOnlyRootFilesystem: true/          readOnlyRootFilesystem: false/' \
  "$work/prod.yaml" >"$work/prod.writable.yaml"
must_reject "a container with a writable root file system" \
  bash -c "'$T/checkov' --config-file k8s/checkov.yaml -f '$work/prod.writable.yaml' -o json \
    2>/dev/null | python3 .ci/checkov_report.py writable"
echo "deployment checks passed"
