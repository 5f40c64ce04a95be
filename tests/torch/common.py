"""Shared pieces of the PyTorch comparison tests: running `cnn run` on a
model with given tensors, comparing within tolerance, and the RESULT line
that tests/run.sh reads."""
import os
import random
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sft  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CNN = os.path.join(ROOT, os.environ.get("BUILD", "build"), "cnn")


def test_seed():
    """The run's seed: $CNN_TEST_SEED, else random. Printed for replay."""
    s = os.environ.get("CNN_TEST_SEED")
    seed = int(s) if s else random.SystemRandom().randrange(1 << 31)
    print("seed %d (replay: CNN_TEST_SEED=%d %s %s)" % (seed, seed, sys.executable, sys.argv[0]))
    return seed


class CnnResult:
    def __init__(self, rc, stderr, output=None, grads=None, state=None):
        self.rc = rc
        self.stderr = stderr
        self.output = output or {}
        self.grads = grads or {}
        self.state = state or {}


def run_cnn(model_text, inputs, weights=None, grad_output=None, train=False, state_out=False,
            seed=0, threads=1, tmp=None):
    """Runs `cnn run`; inputs/weights/grad_output are dicts of numpy arrays."""
    own = tmp is None
    d = tempfile.mkdtemp(prefix="cnn_live_") if own else tmp
    try:
        mp = os.path.join(d, "model.txt")
        with open(mp, "w") as f:
            f.write(model_text)
        xp, yp = os.path.join(d, "x.st"), os.path.join(d, "y.st")
        sft.save(xp, inputs)
        cmd = [CNN, "run", mp, "--input", xp, "--output", yp, "--seed", str(seed),
               "--threads", str(threads)]
        if weights is not None:
            wp = os.path.join(d, "w.st")
            sft.save(wp, weights)
            cmd += ["--weights", wp]
        gp = os.path.join(d, "g.st")
        if grad_output is not None:
            gyp = os.path.join(d, "gy.st")
            sft.save(gyp, {"output": grad_output})
            cmd += ["--backward", gyp, "--grads", gp]
        sp = os.path.join(d, "s.st")
        if state_out:
            cmd += ["--state-out", sp]
        if train:
            cmd += ["--train"]
        for p in (yp, gp, sp):
            if os.path.exists(p):
                os.unlink(p)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            left = [p for p in (yp, gp, sp) if os.path.exists(p)]
            if left:
                return CnnResult(r.returncode, r.stderr + "\n(output files left behind: %s)" % left)
            return CnnResult(r.returncode, r.stderr)
        return CnnResult(0, r.stderr, sft.load(yp), sft.load(gp) if grad_output is not None else None,
                         sft.load(sp) if state_out else None)
    finally:
        if own:
            for f in os.listdir(d):
                os.unlink(os.path.join(d, f))
            os.rmdir(d)


def max_rel_err(got, want):
    """Max |got - want| relative to the largest magnitude of want."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return float("inf")
    if want.size == 0:
        return 0.0
    scale = max(1.0, float(np.abs(want).max()))
    return float(np.abs(got - want).max()) / scale


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def ok(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL " + what)
        return cond

    def finish(self):
        print("RESULT %d %d" % (self.passed, self.failed))
        sys.exit(1 if self.failed else 0)
