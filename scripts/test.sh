#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need,
# starts an AWS-compatible server (moto) on loopback for the AWS adapters,
# runs every test (unit, conformance on both backends, end-to-end over HTTP on
# both backends) and stops the server again, also when tests fail.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

log() { printf '\n==> %s\n' "$*"; }

# Each phase's wall time, printed when it ends and once more, all together,
# at the end (the README's CI figures come from these lines).
phases=()
timed() {
  local name=$1 started=$SECONDS rc=0
  shift
  "$@" || rc=$?
  local took=$((SECONDS - started))
  phases+=("$(printf '%-44s %3dm %02ds%s' "$name" $((took / 60)) $((took % 60)) "$([ "$rc" -eq 0 ] || echo "  (failed: $rc)")")")
  printf '==> %s: %dm %02ds\n' "$name" $((took / 60)) $((took % 60))
  return "$rc"
}

# --- what the tests need: Python tools, Debian packages, axe-core, nextest --
timed "setup (installs when missing)" ./scripts/test-setup.sh
venv="$root/.venv"

# --- moto on free loopback ports: one server per core -----------------------
# infra/moto_server.py is moto's own server handling one request at a time, so
# that DynamoDB transactions are isolated as on AWS (see infra/README.md). One
# server keeps one core busy at most; with one per core, each test takes the
# server of its nextest slot (tests/src/aws.rs, `endpoint`) and the tests
# running together use them all. Every test makes its own tables, buckets,
# secret and queues, so no test cares which server it gets.
servers=${PUBLINKS_MOTO_SERVERS:-$(nproc)}
[ "$servers" -ge 1 ] 2>/dev/null || servers=1
read -r -a ports <<<"$("$venv/bin/python" -c "
import socket
socks = [socket.socket() for _ in range($servers)]
for s in socks: s.bind(('127.0.0.1', 0))
print(' '.join(str(s.getsockname()[1]) for s in socks))")"
mkdir -p target
moto_pids=()
endpoints=()
stop_moto() {
  for pid in "${moto_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${moto_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_moto EXIT
for i in "${!ports[@]}"; do
  n=$((i + 1))
  "$venv/bin/python" infra/moto_server.py -H 127.0.0.1 -p "${ports[$i]}" >"$root/target/moto-$n.log" 2>&1 &
  moto_pids+=($!)
  endpoints+=("http://127.0.0.1:${ports[$i]}")
done
log "started $servers moto server(s) on ${endpoints[*]} (logs: target/moto-N.log)"
# Each server answers within 30 s, and is still running while it is waited
# for, or the run stops here with its log: the AWS tests would otherwise
# each fail on a refused connection.
for i in "${!endpoints[@]}"; do
  url=${endpoints[$i]}
  deadline=$((SECONDS + 30))
  until "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('$url/moto-api/', timeout=1)" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ] || ! kill -0 "${moto_pids[$i]}" 2>/dev/null; then
      echo "moto did not answer on $url; its log (target/moto-$((i + 1)).log):" >&2
      cat "$root/target/moto-$((i + 1)).log" >&2 || true
      exit 1
    fi
    sleep 0.1
  done
done

export PUBLINKS_TEST_AWS_ENDPOINT="${endpoints[*]}"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
# The tables, buckets and secret come from infra/template.yaml: one definition.
"$venv/bin/python" infra/local_resources.py >target/aws-resources.json
export PUBLINKS_TEST_AWS_RESOURCES="$root/target/aws-resources.json"

# --- the suite -----------------------------------------------------------------
# Every run below, always: a failure fails the script only once all have run.
status=0

# What the template promises (per-function logs, concurrency, alarms, secrets,
# write prefixes, the origin header...), checked offline.
log "checking infra/template.yaml's rules"
timed "template rules" "$venv/bin/python" infra/template_rules.py || status=$?

log "running the test suite"
PUBLINKS_E2E_BACKEND=embedded timed "test suite (embedded store; AWS conformance)" \
  cargo nextest run --workspace --all-targets "$@" || status=$?

# The end-to-end tests again, with the local server on the AWS adapters (fresh
# tables, buckets and secret per test on the moto servers above) instead of
# the embedded store: every rule over HTTP holds on both backends. The aws-e2e
# profile runs the e2e binary alone and leaves out its embedded_only tests
# (see .config/nextest.toml); selecting them there, not with `-p`, keeps the
# build the one above (a build of one package unifies features differently
# and would compile three crates again). A filter passed to this script may
# leave no e2e test to run: no failure then.
log "running the end-to-end tests on the AWS adapters ($servers moto server(s))"
no_tests=fail
[ "$#" -eq 0 ] || no_tests=warn
PUBLINKS_E2E_BACKEND=aws timed "end-to-end tests on AWS ($servers moto server(s))" \
  cargo nextest run --profile aws-e2e --no-tests "$no_tests" --workspace --all-targets "$@" || status=$?

# Schema-driven fuzzing: the local server (embedded store, demo data, the
# administrator's bearer token) against its own OpenAPI document, every
# operation, bounded to FUZZ_MAX_EXAMPLES cases per operation and phase and
# FUZZ_TIMEOUT seconds; checks: no 5xx, documented status codes, responses
# (bodies, content types, headers) as documented. Left out when a filter is
# given, unless PUBLINKS_FUZZ=1.
if [ "$#" -eq 0 ] || [ "${PUBLINKS_FUZZ:-0}" = 1 ]; then
  log "fuzzing the API with schemathesis (report: target/schemathesis/)"
  target_dir=$(scripts/target-dir.sh)
  # What the suite above built (`--workspace`: the same features): no rebuild.
  cargo build -q --workspace --bin publinks-local
  FUZZ_MAX_EXAMPLES="${FUZZ_MAX_EXAMPLES:-50}" FUZZ_TIMEOUT="${FUZZ_TIMEOUT:-300}" \
    timed "API fuzzing (schemathesis)" \
    "$venv/bin/python" scripts/fuzz_api.py "$target_dir/debug/publinks-local" "$target_dir/schemathesis" || status=$?
else
  log "schema-driven fuzzing left out (a filter was given; PUBLINKS_FUZZ=1 runs it too)"
fi

log "phase times (wall)"
printf '  %s\n' "${phases[@]}"
exit "$status"
