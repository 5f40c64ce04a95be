#!/bin/sh
# make test-valgrind: a short training run and a forward+backward `cnn run`
# under valgrind (memcheck): any invalid read or write, use of uninitialised
# memory or leak fails (exit status 99 from valgrind). $BUILD/cnn is used as
# built (an optimised build with -g: what users run). Prints
# "RESULT passed failed".
BUILD=${BUILD:-build}
VALGRIND=${VALGRIND:-valgrind --leak-check=full --error-exitcode=99 -q}
CNN=$BUILD/cnn
passed=0
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run WHAT STATUS COMMAND...: COMMAND under valgrind must exit with STATUS
# (valgrind's own errors exit 99).
run() {
    what=$1
    want=$2
    shift 2
    $VALGRIND "$@" >"$tmp/log" 2>&1
    rc=$?
    if [ "$rc" -eq "$want" ] && ! grep -q '^==[0-9]*==' "$tmp/log"; then
        echo "PASS $what"
        passed=$((passed + 1))
    else
        echo "FAIL $what (exit $rc, expected $want):"
        sed 's/^/   /' "$tmp/log" | tail -60
        failed=$((failed + 1))
    fi
}

run "cnn train (LeNet-5, one epoch of the Fashion-MNIST subset, checkpoint, metrics, save)" 0 \
    "$CNN" train models/lenet5.txt --data data/fashion-mnist-subset --epochs 1 --batch-size 100 \
    --optimizer adam --scheduler cosine --augment crop:2,flip --checkpoint "$tmp/ck.st" \
    --metrics "$tmp/m.jsonl" --save "$tmp/w.st" --threads 1 --quiet
# Resuming a finished run loads the checkpoint (weights, Adam's state, the
# schedule) and saves at once: the load path without another epoch's cost.
run "cnn train --resume (load a checkpoint, save the weights)" 0 \
    "$CNN" train models/lenet5.txt --data data/fashion-mnist-subset --epochs 1 --batch-size 100 \
    --optimizer adam --scheduler cosine --resume "$tmp/ck.st" --save "$tmp/w2.st" --threads 1 --quiet

# cnn run with backward needs an input and an output gradient: a 2 x 1 x
# 28 x 28 input and a 2 x 10 gradient, as safetensors files written with
# printf (the 8-byte little-endian header length, the header, the data).
printf 'Conv2d(1, 6, kernel_size=5, padding=2)\nBatchNorm2d(6)\nReLU()\nMaxPool2d(2)\nFlatten()\nDropout(0.5)\nLinear(6 * 14 * 14, 10)\nLogSoftmax(dim=1)\n' >"$tmp/m.txt"
tensor_file() { # FILE NAME SHAPE BYTES
    h='{"'$2'":{"dtype":"F32","shape":['$3'],"data_offsets":[0,'$4']}}'
    while [ $((${#h} % 8)) -ne 0 ]; do h="$h "; done
    {
        printf "$(printf '\\%03o\\%03o\\000\\000\\000\\000\\000\\000' $((${#h} & 255)) $((${#h} >> 8)))"
        printf '%s' "$h"
        head -c "$4" /dev/zero | tr '\0' '\077'
    } >"$1"
}
tensor_file "$tmp/x.st" input 2,1,28,28 $((2 * 28 * 28 * 4))
tensor_file "$tmp/gy.st" output 2,10 $((2 * 10 * 4))
run "cnn run with --backward, --train and --state-out" 0 \
    "$CNN" run "$tmp/m.txt" --input "$tmp/x.st" --output "$tmp/y.st" --backward "$tmp/gy.st" \
    --grads "$tmp/g.st" --train --state-out "$tmp/s.st" --seed 3 --threads 1
run "cnn run failing on a malformed file (error paths free what they took)" 1 \
    "$CNN" run "$tmp/m.txt" --input tests/data/malformed/st_shape_lies.safetensors --output "$tmp/bad.st"
run "cnn train failing on labels out of range for the model" 1 \
    "$CNN" train tests/data/malformed/model.txt --data tests/data/malformed/idx_label_model_range --epochs 1 \
    --threads 1
echo "RESULT $passed $failed"
[ "$failed" -eq 0 ]
