#!/usr/bin/env bash
# test_run_demo.sh MYNA - `make run` with MYNA_LLM_* values that hold the
# characters sed's replacement reads as its own (&, \, |): the demo's
# instances file carries them as they were given, and myna takes it (the
# script's myna here is MYNA with --check-config added).
set -euo pipefail
myna=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf '#!/bin/sh\nexec "%s" "$@" --check-config\n' "$myna" > "$dir/myna"
chmod +x "$dir/myna"
cd "$dir"
MYNA_LLM_URL='http://127.0.0.1:9/v1?a=1&b=2|c' MYNA_LLM_MODEL='m&1' MYNA_LLM_API_KEY='k\ey&"q|' \
    "$root/scripts/run-demo.sh" "$dir/myna" 127.0.0.1:1 127.0.0.1:2 > out.txt 2>&1 ||
    { cat out.txt; exit 1; }
grep -q '^configuration ok: 1 instance(s)$' out.txt || { cat out.txt; exit 1; }
for want in '"url": "http://127.0.0.1:9/v1?a=1&b=2|c"' '"model": "m&1"' '"api_key": "k\\ey&\"q|"'; do
    grep -qF "$want" var/demo-instances.json || { echo "not in the file: $want"; cat var/demo-instances.json; exit 1; }
done
echo "run-demo.sh carries the LLM settings as given"
