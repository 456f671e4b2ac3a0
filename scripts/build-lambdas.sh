#!/usr/bin/env bash
# Builds every Lambda function in release mode for Lambda's x86_64 target
# (provided.al2023) and checks that each binary runs on Amazon Linux 2023's
# glibc (2.34): no versioned glibc symbol newer than that, and that it is a
# position-dependent executable (functions/build.rs). Prints the sizes
# against issue 17's 8 MiB target and the build's wall time.
# `sam build` does the same through cargo-lambda; this needs only binutils
# (objdump, readelf) and python3 (scripts/target-dir.sh) beside cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
functions=(library-api links-api public-api audit-stream zip-builder library-worker)
args=()
for f in "${functions[@]}"; do args+=(-p "$f"); done
# What each function may link (README, "Layout"): SQLite in none; aws-lc
# (the SDK's default TLS crypto, a C build) in none; the templates in
# public-api alone; the image codecs in library-worker alone (it makes the
# renditions that public-api serves as stored); no SDK client a function does
# not call (audit-stream: DynamoDB and Secrets Manager; zip-builder and
# library-worker: DynamoDB, S3 and SQS); no regex engine (tracing-subscriber's
# `env-filter` is the local server's: the functions filter logs with `Targets`).
status=0
for f in "${functions[@]}"; do
  forbidden='rusqlite|libsqlite3-sys|publinks-embedded|aws-lc-rs|aws-lc-sys|regex-automata|regex-syntax'
  [ "$f" = public-api ] || forbidden="$forbidden|askama|publinks-pages"
  [ "$f" = library-worker ] || forbidden="$forbidden|publinks-media|image|png|zune-jpeg|webp|libwebp-sys"
  case "$f" in
    audit-stream) forbidden="$forbidden|aws-sdk-s3|aws-sdk-sqs" ;;
    zip-builder|library-worker) forbidden="$forbidden|aws-sdk-secretsmanager" ;;
  esac
  found=$(cargo tree --locked -p "$f" -e normal --prefix none | awk '{print $1}' | sort -u | grep -xE "$forbidden" || true)
  if [ -n "$found" ]; then
    echo "  $f links what it does not run: $(echo $found)" >&2
    status=1
  fi
done
built=$(scripts/target-dir.sh)
started=$(date +%s)
cargo build --release --locked "${args[@]}"
elapsed=$(( $(date +%s) - started ))
max_glibc="2.34"
max_mib=8
for f in "${functions[@]}"; do
  bin="$built/release/$f"
  newest=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)
  size=$(stat -c %s "$bin")
  awk -v f="$f" -v s="$size" -v g="$newest" -v m="$max_mib" 'BEGIN {
    printf "%-14s %6.2f MiB (target %d MiB: %s)  newest glibc symbol %s\n", f, s / 1048576, m,
      s <= m * 1048576 ? "met" : sprintf("%.2f over", s / 1048576 - m), g }'
  if ! readelf -h "$bin" | grep -q 'Type:[[:space:]]*EXEC'; then
    echo "  $f is a position-independent executable: functions/build.rs links it with -no-pie" >&2
    status=1
  fi
  if [ "$(printf '%s\n%s\n' "$newest" "$max_glibc" | sort -V | tail -1)" != "$max_glibc" ]; then
    echo "  $f needs glibc $newest, newer than Amazon Linux 2023's $max_glibc" >&2
    status=1
  fi
done
printf 'release build: %dm %02ds wall time (target: 8 min from an empty target directory, on 2 cores)\n' $((elapsed / 60)) $((elapsed % 60))
exit $status
