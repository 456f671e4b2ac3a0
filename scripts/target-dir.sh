#!/usr/bin/env bash
# Prints the directory cargo builds into (CARGO_TARGET_DIR, a configured
# target-dir, or target/), for the scripts that run or measure its binaries.
set -euo pipefail
cargo metadata --format-version 1 --no-deps --manifest-path "$(dirname "$0")/../Cargo.toml" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
