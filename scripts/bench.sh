#!/usr/bin/env bash
# The benchmarks, in release mode, each printed against a baseline measured
# in the same run (ratios, not absolute times, are what to compare between
# runs). Installs what they need if missing: wrk, zip, GNU time and the ZIP
# readers (Debian), and a virtualenv with moto for the cold start. Not part
# of the tests: nothing here fails on a timing.
#   ./scripts/bench.sh                 every benchmark
#   ./scripts/bench.sh links public    some of: links, public, cold-start, zip, zip64, download, visits
# `zip` builds archives against Info-ZIP's zip; `zip64` runs the (ignored)
# test of archives past 4 GiB, which writes about 9 GiB; `download` serves a
# 4 GiB archive from the local server's signed URL to curl over loopback,
# against cp and cat of the same file (writes about 8 GiB). `visits` prints
# the DynamoDB and S3 calls (reads and writes) of each kind of visit, counted
# on moto by the SDK clients' interceptor (the test tests/e2e/visits.rs, on
# the AWS backend, which fails past infra/README.md's figures); a smaller run of `zip`:
# `./target/server/publinks-bench zip --large-mib 256`. The benchmarks run
# the local server's build (profile `server`: full speed); the cold start
# runs `public-api` as Lambda gets it (release: size first).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
benches=("$@")
[ ${#benches[@]} -gt 0 ] || benches=(links public cold-start zip zip64 download visits)

missing=()
for tool in wrk:wrk zip:zip unzip:unzip 7z:p7zip-full bsdtar:libarchive-tools curl:curl; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
done
[ -x /usr/bin/time ] || missing+=(time)
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
cargo build --profile server -q -p publinks-bench
cargo build --release -q -p public-api
built=$(scripts/target-dir.sh)

# moto on a free loopback port (once), with the template's resources, for the
# benchmarks that run against the AWS adapters.
venv="$root/.venv"
moto_pid=""
moto_up() {
  [ -z "$moto_pid" ] || return 0
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import moto, boto3, yaml' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==5.2.5" boto3 PyYAML
  fi
  local port
  port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$venv/bin/python" infra/moto_server.py -H 127.0.0.1 -p "$port" >/tmp/publinks-bench-moto.log 2>&1 &
  moto_pid=$!
  trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
  # It answers within 30 s, and is still running while it is waited for,
  # or the benchmarks stop here with its log (as in scripts/test.sh).
  local deadline=$((SECONDS + 30))
  until "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/', timeout=1)" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ] || ! kill -0 "$moto_pid" 2>/dev/null; then
      echo "moto did not answer on 127.0.0.1:$port; its log (/tmp/publinks-bench-moto.log):" >&2
      cat /tmp/publinks-bench-moto.log >&2 || true
      exit 1
    fi
    sleep 0.1
  done
  mkdir -p target
  "$venv/bin/python" infra/local_resources.py >target/aws-resources.json
  export PUBLINKS_TEST_AWS_ENDPOINT="http://127.0.0.1:$port" PUBLINKS_TEST_AWS_RESOURCES="$root/target/aws-resources.json"
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
}

for bench in "${benches[@]}"; do
  case "$bench" in
    links | public | zip | download) "$built/server/publinks-bench" "$bench" ;;
    zip64) cargo nextest run -p publinks-e2e --test conformance --run-ignored only zip64 ;;
    cold-start)
      moto_up
      "$venv/bin/python" bench/cold_start.py "$built/release/public-api" 10
      ;;
    visits)
      moto_up
      PUBLINKS_E2E_BACKEND=aws cargo nextest run --profile aws-e2e -p publinks-e2e --test e2e --no-capture \
        -E 'test(each_visit_costs_the_storage_calls_the_table_design_allows)'
      ;;
    *) echo "unknown benchmark $bench (links, public, cold-start, zip, zip64, download, visits)" >&2; exit 2 ;;
  esac
done
