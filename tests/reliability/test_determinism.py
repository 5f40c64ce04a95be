#!/usr/bin/env python3
"""Determinism: a training run's saved weights are a function of its seed.

Against one uninterrupted reference run (2 epochs on the shipped
Fashion-MNIST subset; batch norm, dropout, augmentation, Adam, a warm-up
schedule), byte for byte equal --save files must come from:
  - the same command again;
  - the same command with --threads 2;
  - a run stopped after epoch 1 (--checkpoint) and resumed with --resume;
  - a run interrupted by SIGINT at a random moment (exit 130, checkpoint
    saved, no --save file written) and resumed.

Prints its seed; CNN_TEST_SEED=N replays. Ends with "RESULT passed failed"."""
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
CNN = os.path.join(BUILD, "cnn")
MODEL = ("Conv2d(1, 8, 3, padding=1)\nBatchNorm2d(8)\nReLU()\nMaxPool2d(2)\nConv2d(8, 8, 3, padding=1)\n"
         "ReLU()\nMaxPool2d(2)\nFlatten()\nDropout(0.25)\nLinear(8 * 7 * 7, 32)\nRReLU()\nLinear(32, 10)\n")
DATA = os.path.join(ROOT, "data", "fashion-mnist-subset")

passed = failed = 0


def check(cond, what, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("PASS " + what)
    else:
        failed += 1
        print("FAIL " + what + (":\n   " + detail.strip().replace("\n", "\n   ") if detail else ""))


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def main():
    s = os.environ.get("CNN_TEST_SEED")
    seed = int(s) if s else random.SystemRandom().randrange(1 << 31)
    print("seed %d (replay: CNN_TEST_SEED=%d BUILD=%s %s)" % (seed, seed, os.environ.get("BUILD", "build"),
                                                             sys.argv[0]))
    rng = random.Random(seed)
    d = tempfile.mkdtemp(prefix="cnn_determinism_")
    try:
        model = os.path.join(d, "model.txt")
        with open(model, "w") as f:
            f.write(MODEL)
        common = [CNN, "train", model, "--data", DATA, "--batch-size", "50", "--optimizer", "adam",
                  "--scheduler", "cosine", "--warmup", "1", "--augment", "crop:2,flip",
                  "--normalize", "0.286,0.353", "--seed", str(seed % 1000), "--threads", "1"]

        def train(name, *extra, epochs=2):
            out = os.path.join(d, name)
            t0 = time.time()
            r = subprocess.run(common + ["--epochs", str(epochs), "--save", out] + list(extra),
                               capture_output=True, text=True, timeout=900)
            return r, read(out), time.time() - t0

        r, ref, span = train("ref.st")
        check(r.returncode == 0 and ref, "the reference run (%.1f s)" % span, r.stderr)
        if not ref:
            return
        r, again, _ = train("again.st")
        check(r.returncode == 0 and again == ref, "the same seed again gives the same bytes", r.stderr)
        r, threads, _ = train("threads.st", "--threads", "2")
        check(r.returncode == 0 and threads == ref, "--threads 2 gives the same bytes as --threads 1", r.stderr)

        ck = os.path.join(d, "epoch.ck")
        r, _, _ = train("first.st", "--checkpoint", ck, epochs=1)
        r2, resumed, _ = train("resumed.st", "--resume", ck)
        check(r.returncode == 0 and r2.returncode == 0 and resumed == ref,
              "stopped after epoch 1 and resumed: the same bytes", r.stderr + r2.stderr)

        # SIGINT at a random moment of the run; too late (the run finished)
        # means trying again earlier.
        ck = os.path.join(d, "sigint.ck")
        out = os.path.join(d, "interrupted.st")
        hi = span
        for attempt in range(8):
            for p in (ck, out):
                if os.path.exists(p):
                    os.unlink(p)
            p = subprocess.Popen(common + ["--epochs", "2", "--checkpoint", ck, "--save", out],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            # The handler is installed before the "training ..." line is printed.
            first = p.stderr.readline()
            delay = rng.uniform(0, hi * 0.8)
            time.sleep(delay)
            p.send_signal(signal.SIGINT)
            rest_out, rest_err = p.communicate(timeout=900)
            err = first + rest_err
            if p.returncode == 0:
                hi = delay
                continue
            check(p.returncode == 130 and "interrupted at epoch" in err and os.path.exists(ck),
                  "SIGINT after %.2f s: exit 130 with a checkpoint" % delay, err)
            check(not os.path.exists(out), "an interrupted run writes no --save file")
            r2, resumed, _ = train("resumed2.st", "--resume", ck)
            where = [l for l in err.splitlines() if "interrupted at" in l]
            check(r2.returncode == 0 and resumed == ref,
                  "interrupted (%s) and resumed: the same bytes" % (where[0] if where else "?"), r2.stderr)
            break
        else:
            check(False, "SIGINT: never landed before the run ended in 8 tries")
    finally:
        shutil.rmtree(d, ignore_errors=True)
        print("RESULT %d %d" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
