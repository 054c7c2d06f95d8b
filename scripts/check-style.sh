#!/usr/bin/env bash
# check-style.sh SRC_DIR - the rules the compiler cannot check by itself:
# every .c under src/ includes core/banned.h as its last include, and no
# banned function is called anywhere in src/.
set -u
src=${1:-src}
fail=0
while IFS= read -r f; do
    last=$(grep -E '^#include' "$f" | tail -n 1)
    if [ "$last" != '#include "core/banned.h"' ]; then
        echo "$f: the last #include must be \"core/banned.h\"" >&2
        fail=1
    fi
done < <(find "$src" -name '*.c')
if grep -rnE '\b(sprintf|strcpy|strcat|strtok|atoi|gmtime|localtime)[[:space:]]*\(' "$src" \
        --include='*.c' --include='*.h' | grep -v 'src/core/banned.h'; then
    echo "banned functions used (see src/core/banned.h)" >&2
    fail=1
fi
[ $fail -eq 0 ] && echo "style ok"
exit $fail
