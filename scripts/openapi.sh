#!/usr/bin/env bash
# Writes the OpenAPI document the code generates to api/openapi.json, the
# committed copy; a unit test (http::openapi) fails while that copy is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run -q -p publinks-admin -- openapi >api/openapi.json.tmp
mv api/openapi.json.tmp api/openapi.json
echo "wrote api/openapi.json"
