#!/usr/bin/env bash
# run-fuzzer.sh FUZZER CORPUS SECONDS [-dict=FILE]
# Runs a libFuzzer binary for a bounded time on a scratch copy of the
# committed corpus (the committed corpus is never rewritten by a run).
# Any crash, leak or sanitizer report fails the run; the input that caused it
# is left in the scratch directory, whose path is printed.
set -euo pipefail
fuzzer=$1 corpus=$2 seconds=$3
shift 3
work=$(mktemp -d "${TMPDIR:-/tmp}/myna-fuzz.XXXXXX")
mkdir -p "$work/corpus"
cp -r "$corpus"/. "$work/corpus/" 2>/dev/null || true
cd "$work"
echo "fuzzing $(basename "$fuzzer") for ${seconds}s in $work"
if "$fuzzer" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "$@" corpus >fuzz.log 2>&1; then
    tail -n 12 fuzz.log
    rm -rf "$work"
else
    tail -n 60 fuzz.log
    echo "fuzzer failed; inputs and log kept in $work" >&2
    exit 1
fi
