#!/bin/sh
# make test-tsan: the threaded code under ThreadSanitizer (build-tsan/): the
# fast kernels' own tests (which run with thread pools), adaptive thread
# use (steps switching between 2 threads and 1), a batch's halves run
# through a chain of layers side by side (test_shard, LeNet-5 in cnn
# train), two models trained from two threads of one program, and cnn
# train with --threads 2. A data
# race makes the program exit 86 (TSAN_OPTIONS, set by the make target) and
# write its report under build-tsan/san-logs. Prints "RESULT passed failed".
BUILD=${BUILD:-build-tsan}
passed=0
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run() {
    what=$1
    shift
    if "$@" >"$tmp/log" 2>&1; then
        echo "PASS $what"
        passed=$((passed + 1))
    else
        echo "FAIL $what (exit $?):"
        sed 's/^/   /' "$tmp/log" | tail -40
        failed=$((failed + 1))
    fi
}

run "test_conv_fast (convolutions on a thread pool)" "$BUILD/tests/test_conv_fast"
run "test_linear_fast (Linear on a thread pool)" "$BUILD/tests/test_linear_fast"
run "test_thread_pool (round-robin and blocked jobs)" "$BUILD/tests/test_thread_pool"
run "test_norm_fast (normalisation on a thread pool)" "$BUILD/tests/test_norm_fast"
run "test_adapt (training steps switching between 2 threads and 1)" "$BUILD/tests/test_adapt"
run "test_shard (a batch's halves through a chain of layers on two threads)" "$BUILD/tests/test_shard"
run "test_conv_quadimg (F(4,5) with images on the lanes on a thread pool)" "$BUILD/tests/test_conv_quadimg"
run "two models trained from two threads" "$BUILD/reliability/train_threads"
run "cnn train --threads 2 (one epoch of the Fashion-MNIST subset)" \
    "$BUILD/cnn" train models/fashion_cnn.txt --data data/fashion-mnist-subset --epochs 1 \
    --threads 2 --batch-size 100 --save "$tmp/w.st" --quiet
run "cnn train LeNet-5 --threads 2 (its layers in halves of each batch of 64)" \
    "$BUILD/cnn" train models/lenet5.txt --data data/fashion-mnist-subset --epochs 1 \
    --threads 2 --batch-size 64 --save "$tmp/l.st" --quiet
echo "RESULT $passed $failed"
[ "$failed" -eq 0 ]
