#!/usr/bin/env bash
# deps.sh - installs the Debian 12 packages Myna needs to build, test and
# benchmark. Does nothing when all are there; works as root or through sudo.
set -euo pipefail

packages=(
    build-essential cmake pkg-config git
    clang libclang-rt-14-dev            # libFuzzer and sanitizers for make check
    libevent-dev libcurl4-openssl-dev libcjson-dev libsqlite3-dev libssl-dev
    libhiredis-dev
    libcmocka-dev
    curl openssl sqlite3                # scripts and operators' tools
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
[ ${#missing[@]} -eq 0 ] && exit 0

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
