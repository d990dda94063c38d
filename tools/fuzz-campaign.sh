#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 120) on a copy of the
# committed seed corpus. Needs cargo-fuzz (`cargo install cargo-fuzz`); on a
# stable toolchain RUSTC_BOOTSTRAP=1 lets it use the sanitizer flags.
# Crashes land in fuzz/artifacts/<target>/; the summary goes to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-120}
work=$(mktemp -d)
for target in envelope payload import_line note proof; do
  mkdir -p "$work/$target"
  echo "== $target ($seconds s)"
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "$work/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 2>&1 | grep -E "^(#[0-9]+ +DONE|Done|==[0-9]+==|SUMMARY|artifact)" || true
done
echo "new corpus inputs kept in $work"
