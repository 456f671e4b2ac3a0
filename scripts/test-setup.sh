#!/usr/bin/env bash
# What the test suite needs on a fresh machine, installed when missing (and
# nothing else: a second run finds everything and returns at once).
# scripts/test.sh runs it first; .ci/run runs it early in the background,
# while cargo builds, so that the installs are off the critical path.
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
