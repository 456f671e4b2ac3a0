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
built=$(scripts/target-dir.sh)
data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$built/debug/publinks-local" --data-dir "$data/store" --port "$port" --info-file "$data/info.json" >"$work/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$data"' EXIT
# The server writes its info file once it listens: within 20 s, and while
# it still runs, or the audit stops here with the server's log.
deadline=$((SECONDS + 20))
until [ -s "$data/info.json" ]; do
  if [ "$SECONDS" -ge "$deadline" ] || ! kill -0 "$server" 2>/dev/null; then
    echo "the local server did not start; its log ($work/server.log):" >&2
    cat "$work/server.log" >&2 || true
    exit 1
  fi
  sleep 0.2
done
node "$work/flow.mjs" "$data/info.json" "$work/report.html"
