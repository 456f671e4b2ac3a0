#!/usr/bin/env bash
# Lighthouse (accessibility and best practices; performance and page weight
# too on the visitor's pages, desktop and mobile) on the dashboard's pages,
# signed in, and on a visitor's folder, file and password pages: starts a
# local server on a fresh demo store and a free port, installs Lighthouse
# and puppeteer-core from npm into target/lighthouse (pinned; Chromium from
# Debian drives them), prints each page's scores and writes the full report
# to target/lighthouse/report.html. Not part of the test command (npm's
# Lighthouse is large and slow to start). Exits 0 only if every page scores
# 100 in both.
set -euo pipefail
cd "$(dirname "$0")/.."
work=target/lighthouse
mkdir -p "$work"
if [ ! -d "$work/node_modules/lighthouse" ]; then
  (cd "$work" && npm init -y >/dev/null &&
    npm i -E lighthouse@12.2.3 puppeteer-core@23.11.1 --no-audit --no-fund --silent)
fi
cp scripts/lighthouse-flow.mjs "$work/flow.mjs"
cargo build -q -p publinks-local
# Where cargo puts what it builds (CARGO_TARGET_DIR, a config's target-dir, or target/).
built=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$built/debug/publinks-local" --data-dir "$data/store" --port "$port" --info-file "$data/info.json" >"$work/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do [ -s "$data/info.json" ] && break; sleep 0.2; done
node "$work/flow.mjs" "$data/info.json" "$work/report.html"
