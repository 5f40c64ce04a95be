#!/bin/sh
# Runs test programs and sums their results into one line "N passed, N failed".
# Usage: run.sh [C test binaries...] [-- python test scripts...]
# Every test program prints "RESULT <passed> <failed>" as its last line; a
# program that crashes or prints no RESULT line counts as one failure.
passed=0
failed=0
mode=c
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "$@"; do
    if [ "$t" = "--" ]; then mode=py; continue; fi
    if [ "$mode" = py ]; then
        if ! "$PYTHON" -c 'import torch' >/dev/null 2>&1; then
            echo "SKIP $t: PyTorch is not installed for $PYTHON (apt-get install python3-torch)"
            continue
        fi
        set -- "$PYTHON" "$t"
    else
        set -- "$t"
    fi
    echo "== $*"
    "$@" >"$log" 2>&1
    rc=$?
    grep -v '^RESULT ' "$log" | grep -E -v '^PASS ' | sed 's/^/   /'
    res=$(grep '^RESULT ' "$log" | tail -n 1)
    if [ -z "$res" ]; then
        echo "   FAIL: $* exited with status $rc without a result line"
        failed=$((failed + 1))
        continue
    fi
    p=$(echo "$res" | cut -d' ' -f2)
    f=$(echo "$res" | cut -d' ' -f3)
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "   FAIL: $* exited with status $rc"
        f=1
    fi
    echo "   $p passed, $f failed"
    passed=$((passed + p))
    failed=$((failed + f))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
