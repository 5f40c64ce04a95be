#!/usr/bin/env python3
"""Crash safety: kill -9 at random moments never leaves a partial or torn
checkpoint, and what was saved resumes.

1. `cnn train ... --checkpoint CK` killed at random moments (checkpoints every
   few milliseconds: a small data set, many epochs): CK is absent (killed
   before the first) or loads, and `cnn train --resume CK` finishes the run.
2. ck_loop, writing a checkpoint over the same file in a tight loop, killed at
   random moments: the file always holds exactly the last save that returned
   or the one in progress (never a mixture: the weights must be those of the
   step the file names).

Prints its seed; CNN_TEST_SEED=N replays. Ends with "RESULT passed failed".
Needs $BUILD/cnn and $BUILD/reliability/ck_loop (make test-reliability)."""
import gzip
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
CNN = os.path.join(BUILD, "cnn")
CK_LOOP = os.path.join(BUILD, "reliability", "ck_loop")
MODEL = "Conv2d(1, 8, 3, padding=1)\nReLU()\nMaxPool2d(2)\nFlatten()\nLinear(8 * 14 * 14, 64)\nReLU()\nLinear(64, 10)\n"

passed = failed = 0


def check(cond, what, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("PASS " + what)
    else:
        failed += 1
        print("FAIL " + what + (":\n   " + detail.replace("\n", "\n   ") if detail else ""))


def leftovers(d, base):
    return sorted(f for f in os.listdir(d) if f.startswith(base + ".tmp."))


def small_data(d):
    """64 Fashion-MNIST images as a safetensors data set (epochs of 2 steps)."""
    out = os.path.join(d, "small.safetensors")
    sub = os.path.join(ROOT, "data", "fashion-mnist-subset")
    with gzip.open(os.path.join(sub, "train-images-idx3-ubyte.gz")) as f:
        img = f.read()
    with gzip.open(os.path.join(sub, "train-labels-idx1-ubyte.gz")) as f:
        lab = f.read()
    n = 64
    x = img[16:16 + n * 784]
    y = struct.pack("<%dq" % n, *lab[8:8 + n])
    h = json.dumps({"x": {"dtype": "U8", "shape": [n, 1, 28, 28], "data_offsets": [0, len(x)]},
                    "y": {"dtype": "I64", "shape": [n], "data_offsets": [len(x), len(x) + len(y)]}},
                   separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + x + y)
    return out


def kill_train(rng, d, data, trials):
    model = os.path.join(d, "model.txt")
    with open(model, "w") as f:
        f.write(MODEL)
    ck = os.path.join(d, "train.ck")
    base = ["--data", data, "--batch-size", "32", "--optimizer", "adam", "--seed", "4", "--quiet"]
    # How long a run takes here, to spread the kills over it.
    t0 = time.time()
    r = subprocess.run([CNN, "train", model, "--epochs", "40", "--checkpoint", ck] + base,
                       capture_output=True, text=True, timeout=600)
    span = time.time() - t0
    check(r.returncode == 0, "an uninterrupted run with a checkpoint every epoch", r.stderr)
    for t in range(trials):
        if os.path.exists(ck):
            os.unlink(ck)
        for f in leftovers(d, "train.ck"):
            os.unlink(os.path.join(d, f))
        delay = rng.uniform(0.05, span)
        p = subprocess.Popen([CNN, "train", model, "--epochs", "1000000", "--checkpoint", ck] + base,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        p.stderr.close()
        if not os.path.exists(ck):
            check(True, "kill -9 after %.3f s: no checkpoint yet, and none half-written" % delay)
            continue
        epoch = resumed_epoch(ck)
        out = os.path.join(d, "resumed.st")
        r = subprocess.run([CNN, "train", model, "--resume", ck, "--save", out] + base +
                           ["--epochs", str(epoch + 2)], capture_output=True, text=True, timeout=600)
        tmp = leftovers(d, "train.ck")
        check(r.returncode == 0 and os.path.exists(out),
              "kill -9 after %.3f s: the checkpoint (epoch %d) loads and training resumes from it%s" %
              (delay, epoch, " (a temporary file %s was left beside it)" % tmp[0] if tmp else ""), r.stderr)


def resumed_epoch(ck):
    """The epoch count recorded in a checkpoint's metadata."""
    with open(ck, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
    return int(h["__metadata__"]["cnn.epoch"])


def kill_loop(rng, d, trials):
    ck = os.path.join(d, "loop.ck")
    for t in range(trials):
        if os.path.exists(ck):
            os.unlink(ck)
        delay = rng.uniform(0.02, 0.6)
        p = subprocess.Popen([CK_LOOP, "write", ck], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        out, err = p.communicate()
        saved = [int(l.split()[1]) for l in out.decode().splitlines() if l.startswith("saved ")]
        last = saved[-1] if saved else 0
        if not os.path.exists(ck):
            check(last == 0, "ck_loop killed after %.3f s before its first save returned: no file" % delay,
                  "saves reported: %d, but the file is missing" % last)
            continue
        r = subprocess.run([CK_LOOP, "check", ck], capture_output=True, text=True, timeout=600)
        got = int(r.stdout.split()[1]) if r.returncode == 0 and r.stdout.startswith("step ") else None
        check(got in (last, last + 1),
              "ck_loop killed after %.3f s and %d saves: the file holds save %s, whole" % (delay, last, got),
              r.stderr)


def main():
    s = os.environ.get("CNN_TEST_SEED")
    seed = int(s) if s else random.SystemRandom().randrange(1 << 31)
    print("seed %d (replay: CNN_TEST_SEED=%d BUILD=%s %s)" % (seed, seed, os.environ.get("BUILD", "build"),
                                                             sys.argv[0]))
    rng = random.Random(seed)
    d = tempfile.mkdtemp(prefix="cnn_crash_")
    try:
        data = small_data(d)
        kill_train(rng, d, data, int(os.environ.get("CNN_CRASH_TRIALS", "6")))
        kill_loop(rng, d, int(os.environ.get("CNN_CRASH_TRIALS", "6")) * 2)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print("RESULT %d %d" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
