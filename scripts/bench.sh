#!/usr/bin/env bash
# The benchmarks, in release mode, each printed against a baseline measured
# in the same run (ratios, not absolute times, are what to compare between
# runs). Installs wrk (Debian) if missing. Not part of the tests: nothing
# here fails on a timing.
#   ./scripts/bench.sh            every benchmark
#   ./scripts/bench.sh links      one of: links, public
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null
fi
cargo build --release -q -p publinks-bench
for bench in "${@:-links public}"; do
  for b in $bench; do
    ./target/release/publinks-bench "$b"
  done
done
