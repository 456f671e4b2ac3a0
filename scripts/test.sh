#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need,
# starts an AWS-compatible server (moto) on loopback for the AWS adapters,
# runs every test (unit, conformance on both backends, end-to-end over HTTP on
# both backends) and stops the server again, also when tests fail.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

log() { printf '\n==> %s\n' "$*"; }

# --- Python tools in a local virtualenv -------------------------------------
venv="$root/.venv"
# schemathesis fuzzes the API from its OpenAPI document (pinned: its CLI and
# config format move quickly).
python_packages=("moto[server]==5.2.5" "boto3" "PyYAML" "schemathesis==4.32.5")
if [ ! -x "$venv/bin/moto_server" ] || [ ! -x "$venv/bin/schemathesis" ] ||
  ! "$venv/bin/python" -c 'import yaml, boto3' 2>/dev/null; then
  log "installing ${python_packages[*]} into .venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${python_packages[@]}"
fi

# --- Debian packages: Chromium and its WebDriver (browser tests), and three
# independent ZIP readers that judge every archive (Info-ZIP unzip, 7-Zip,
# libarchive's bsdtar; Python's zipfile is the fourth) ---------------------
apt_packages=()
command -v chromium >/dev/null 2>&1 || apt_packages+=(chromium)
command -v chromedriver >/dev/null 2>&1 || apt_packages+=(chromium-driver)
command -v unzip >/dev/null 2>&1 || apt_packages+=(unzip)
command -v 7z >/dev/null 2>&1 || apt_packages+=(p7zip-full)
command -v bsdtar >/dev/null 2>&1 || apt_packages+=(libarchive-tools)
# npm installs axe-core for the browser tests (below).
command -v npm >/dev/null 2>&1 || apt_packages+=(npm)
if [ "${#apt_packages[@]}" -gt 0 ]; then
  log "installing ${apt_packages[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi

# --- axe-core, the accessibility checker the browser tests inject into every
# dashboard page (pinned in tests/browser/axe/package-lock.json) -------------
if [ ! -f tests/browser/axe/node_modules/axe-core/axe.min.js ]; then
  log "installing axe-core (npm ci in tests/browser/axe)"
  (cd tests/browser/axe && npm ci --no-audit --no-fund --silent)
fi

# --- cargo-nextest (preinstalled on these machines; installed if missing) ---
if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

# --- moto on a free loopback port --------------------------------------------
# infra/moto_server.py is moto's own server handling one request at a time, so
# that DynamoDB transactions are isolated as on AWS (see infra/README.md).
port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p target
moto_log="$root/target/moto.log"
log "starting moto on 127.0.0.1:$port (log: target/moto.log)"
"$venv/bin/python" infra/moto_server.py -H 127.0.0.1 -p "$port" >"$moto_log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
    break
  fi
  sleep 0.1
done

export PUBLINKS_TEST_AWS_ENDPOINT="http://127.0.0.1:$port"
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
"$venv/bin/python" infra/template_rules.py || status=$?

log "running the test suite"
PUBLINKS_E2E_BACKEND=embedded cargo nextest run --workspace --all-targets "$@" || status=$?

# The end-to-end tests again, with the local server on the AWS adapters (fresh
# tables, buckets and secret per test on the moto above) instead of the
# embedded store: every rule over HTTP holds on both backends. The aws-e2e
# profile leaves out the embedded_only tests (see .config/nextest.toml). A
# filter passed to this script may leave no e2e test to run: no failure then.
log "running the end-to-end tests on the AWS adapters (moto)"
no_tests=fail
[ "$#" -eq 0 ] || no_tests=warn
PUBLINKS_E2E_BACKEND=aws cargo nextest run --profile aws-e2e --no-tests "$no_tests" -p publinks-e2e --test e2e "$@" ||
  status=$?

# Schema-driven fuzzing: the local server (embedded store, demo data, the
# administrator's bearer token) against its own OpenAPI document, every
# operation, bounded to FUZZ_MAX_EXAMPLES cases per operation and phase and
# FUZZ_TIMEOUT seconds; checks: no 5xx, documented status codes, responses
# (bodies, content types, headers) as documented. Left out when a filter is
# given, unless PUBLINKS_FUZZ=1.
if [ "$#" -eq 0 ] || [ "${PUBLINKS_FUZZ:-0}" = 1 ]; then
  log "fuzzing the API with schemathesis (report: target/schemathesis/)"
  target_dir=$(cargo metadata --format-version 1 --no-deps | "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  cargo build -q -p publinks-local --bin publinks-local # what the suite above built: no rebuild
  FUZZ_MAX_EXAMPLES="${FUZZ_MAX_EXAMPLES:-50}" FUZZ_TIMEOUT="${FUZZ_TIMEOUT:-300}" \
    "$venv/bin/python" scripts/fuzz_api.py "$target_dir/debug/publinks-local" "$target_dir/schemathesis" || status=$?
else
  log "schema-driven fuzzing left out (a filter was given; PUBLINKS_FUZZ=1 runs it too)"
fi
exit "$status"
