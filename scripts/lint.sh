#!/bin/sh
# Lint: functions levee's code must not use, the layer order of src/
# (scripts/layers.sh), and formatting (when clang-format is installed).
# Exits non-zero on any finding.
set -eu
cd "$(dirname "$0")/.."
status=0

# Unbounded or thread-unsafe C library calls (STYLE.md, "Tools that keep it so").
banned='\b(atoi|atol|sprintf|vsprintf|strcpy|strcat|strtok|gets)[[:space:]]*\('
if grep -rnE "$banned" src tests --include='*.c' --include='*.h'; then
    echo "lint: banned function used (see above): use snprintf, strtoull, memcpy with bounds" >&2
    status=1
fi

if ! scripts/layers.sh; then
    status=1
fi

if command -v clang-format >/dev/null 2>&1; then
    files=$(find src tests -name '*.[ch]' | sort)
    if ! clang-format --dry-run -Werror $files >/dev/null 2>&1; then
        clang-format --dry-run $files 2>&1 | grep -E '^[^ ]+:[0-9]+:[0-9]+: (warning|error)' | cut -d: -f1 | sort -u |
            sed 's/^/lint: not formatted (run make format): /' >&2
        status=1
    fi
fi
[ "$status" -eq 0 ] && echo "lint: ok"
exit "$status"
