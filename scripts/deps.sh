#!/usr/bin/env bash
# deps.sh - installs the Debian 12 packages Myna needs to build, test and
# benchmark, and the browser test's npm package (tests/ui). Does nothing when
# all are there; works as root or through sudo.
set -euo pipefail

packages=(
    build-essential cmake pkg-config git
    clang libclang-rt-14-dev            # libFuzzer and sanitizers for make check
    libevent-dev libcurl4-openssl-dev libcjson-dev libsqlite3-dev libssl-dev
    libmimalloc-dev                     # the allocator of the release binary
    libhiredis-dev
    libcmocka-dev
    curl openssl sqlite3                # scripts and operators' tools
    nodejs chromium                     # the chat page's browser test (tests/ui)
)
case "${1:-}" in
    --bench) packages+=(valgrind) ;;
    "") ;;
    *) echo "usage: $0 [--bench]" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
# some nodejs builds bring npm along; Debian's own splits it out
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: installing ${missing[*]}"
    if [ "$(id -u)" -eq 0 ]; then
        sudo=()
    elif command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "deps: missing packages (${missing[*]}) and neither root nor sudo" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# playwright-core drives the system chromium (it downloads no browser); the
# version is pinned by tests/ui/package-lock.json. Reinstalled only when
# tests/ui/node_modules lacks it or holds another version.
ui="$(cd "$(dirname "$0")/../tests/ui" && pwd)"
if ! node -e 'const w = require(process.argv[1] + "/package.json").dependencies["playwright-core"];
              const h = require(process.argv[1] + "/node_modules/playwright-core/package.json").version;
              process.exit(w === h ? 0 : 1)' "$ui" 2>/dev/null; then
    echo "deps: installing playwright-core into tests/ui"
    (cd "$ui" && npm ci --no-audit --no-fund --loglevel=error)
fi
