#!/bin/sh
# Runs every example program and compares what it prints with
# examples/expected/NAME.txt: words must match exactly, numbers to within
# 1e-4 relative (so float rounding differences between CPUs do not matter);
# a word "*" in the expected text matches anything (figures that depend on
# the machine, such as scratch memory for its instruction set).
# The header's training example must run and exit 0.
BUILD=${BUILD:-build}
passed=0
failed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT
compare() {
    awk -v tol=1e-4 '
        function isnum(s) { return s ~ /^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/ }
        NR == FNR { for (i = 1; i <= NF; i++) want[++nw] = $i; next }
        { for (i = 1; i <= NF; i++) got[++ng] = $i }
        END {
            if (nw != ng) { printf "   %d words, expected %d\n", ng, nw; exit 1 }
            for (i = 1; i <= nw; i++) {
                a = want[i]; b = got[i]; gsub(/[][(),:;]/, "", a); gsub(/[][(),:;]/, "", b)
                if (a == "*") continue
                if (isnum(a) && isnum(b)) {
                    d = a - b; if (d < 0) d = -d; s = a < 0 ? -a : a; if (s < 1) s = 1
                    if (d / s > tol) { printf "   word %d: %s, expected %s\n", i, got[i], want[i]; exit 1 }
                } else if (want[i] != got[i]) { printf "   word %d: \"%s\", expected \"%s\"\n", i, got[i], want[i]; exit 1 }
            }
        }' "$1" "$2"
}
for src in examples/*.c; do
    name=$(basename "$src" .c)
    bin="$BUILD/examples/$name"
    exp="examples/expected/$name.txt"
    if ! (cd "$BUILD/examples" && "./$name") >"$out" 2>&1; then
        echo "FAIL example $name: exit status $?"; sed 's/^/   /' "$out" | head -20
        failed=$((failed + 1)); continue
    fi
    if [ ! -f "$exp" ]; then
        echo "FAIL example $name: no $exp"; failed=$((failed + 1)); continue
    fi
    if compare "$exp" "$out"; then
        echo "PASS example $name"; passed=$((passed + 1))
    else
        echo "FAIL example $name: output differs from $exp"; failed=$((failed + 1))
    fi
done
if [ -x "$BUILD/examples/header_example" ]; then
    tmpd=$(mktemp -d)
    if (cd "$tmpd" && "$OLDPWD/$BUILD/examples/header_example") >"$out" 2>&1 && [ -s "$tmpd/small_cnn.safetensors" ]; then
        echo "PASS example in cnn.h (trains and saves small_cnn.safetensors)"; passed=$((passed + 1))
    else
        echo "FAIL example in cnn.h"; sed 's/^/   /' "$out" | head -20; failed=$((failed + 1))
    fi
    rm -rf "$tmpd"
fi
echo "RESULT $passed $failed"
[ "$failed" -eq 0 ]
