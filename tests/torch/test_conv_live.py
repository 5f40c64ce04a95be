"""Live randomized comparison of the convolution family with the installed
PyTorch: random configurations (every option, odd sizes, groups with dilation
and stride, every padding mode, 1d/2d/3d, transposed, depthwise layers on
larger planes, 5-wide kernels on narrow planes of many images), forward and
all gradients against PyTorch's float64 result;
configurations PyTorch rejects must be rejected by cnn with a message and
exit status 1."""
import os
import random
import warnings

import numpy as np
import torch

import common

TOL = 1e-5


def rand_tuple(rng, n, lo, hi):
    if rng.random() < 0.5:
        return rng.randint(lo, hi)
    return tuple(rng.randint(lo, hi) for _ in range(n))


def fmt(v):
    return repr(v)


def winograd_config(rng):
    """A wide 3x3 stride-1 layer (at least 32 channels each side, enough
    tiles): the Winograd kernels serve its forward and input gradient."""
    cin, cout = rng.randint(32, 72), rng.randint(32, 72)
    kw = {"padding": rng.choice([0, 1, 1, 2, (1, 0), (0, 2)])}
    if rng.random() < 0.3:
        kw["bias"] = False
    if rng.random() < 0.2:
        kw["padding"] = 1
        kw["padding_mode"] = rng.choice(["reflect", "replicate", "circular"])
    text = "Conv2d(%d, %d, 3, %s)" % (cin, cout, ", ".join("%s=%r" % i for i in kw.items()))
    return text, "Conv2d", [rng.randint(1, 3), cin, rng.randint(3, 30), rng.randint(3, 30)]


def narrow5_config(rng):
    """A kernel 5 wide on outputs 4 to 12 wide (or, for the weight gradient,
    to 28) with 12 to 40 images (LeNet's two layers and their neighbours):
    with AVX-512 its gradients run as Winograd F(4,5) with the images along
    the lanes."""
    groups = rng.choice([1, 1, 2])
    wide = rng.random() < 0.4
    cin, cout = groups * (rng.randint(1, 2) if wide else rng.randint(1, 8)), groups * rng.randint(1, 20)
    kh = rng.randint(1, 6)
    ph, pw = rng.randint(0, kh - 1), rng.randint(0, 4)
    w = rng.randint(max(1, 17 - 2 * pw), 32 - 2 * pw) if wide else rng.randint(max(1, 8 - 2 * pw), 16 - 2 * pw)
    h = rng.randint(max(1, kh - 2 * ph), 14)
    text = "Conv2d(%d, %d, (%d, 5), padding=(%d, %d), groups=%d)" % (cin, cout, kh, ph, pw, groups)
    return text, "Conv2d", [rng.randint(12, 40), cin, h, w]


def random_config(rng, allow_invalid):
    if rng.random() < 0.08:
        return winograd_config(rng)
    if rng.random() < 0.06:
        return narrow5_config(rng)
    transposed = rng.random() < 0.35
    nsp = rng.choice([1, 2, 2, 3])
    name = ("ConvTranspose%dd" if transposed else "Conv%dd") % nsp
    groups = rng.choice([1, 1, 2, 3])
    cin = groups * rng.randint(1, 3)
    cout = groups * rng.randint(1, 3)
    if rng.random() < 0.25:
        # wide layers: at least 24 channels per group on the output side, or
        # both sides, reach the direct kernels (forward and backward data)
        cout = groups * rng.randint(24, 40)
        if rng.random() < 0.6:
            cin = groups * rng.randint(24, 36)
    # depthwise: one input channel per group (the depthwise kernels), a
    # channel multiplier of 1 to 3, and larger planes
    depthwise = not transposed and rng.random() < 0.2
    if depthwise:
        groups = cin = rng.randint(1, 8)
        cout = cin * rng.randint(1, 3)
    kw = {}
    k = rand_tuple(rng, nsp, 1, 4 if nsp < 3 else 3)
    if rng.random() < 0.6:
        kw["stride"] = rand_tuple(rng, nsp, 1, 3)
    if rng.random() < 0.5:
        kw["dilation"] = rand_tuple(rng, nsp, 1, 3)
    if transposed:
        if rng.random() < 0.6:
            kw["padding"] = rand_tuple(rng, nsp, 0, 2)
        if rng.random() < 0.4:
            kw["output_padding"] = rand_tuple(rng, nsp, 0, 2)
    else:
        r = rng.random()
        if r < 0.15:
            kw["padding"] = "same"
            if rng.random() < 0.7:
                kw.pop("stride", None)
        elif r < 0.25:
            kw["padding"] = "valid"
        elif r < 0.8:
            kw["padding"] = rand_tuple(rng, nsp, 0, 3)
        if rng.random() < 0.4:
            kw["padding_mode"] = rng.choice(["reflect", "replicate", "circular"])
    if rng.random() < 0.25:
        kw["bias"] = False
    if allow_invalid and rng.random() < 0.3:
        bad = rng.choice(["groups", "in", "stride0", "outpad", "mode", "pad"])
        if bad == "groups":
            groups = rng.choice([2, 4])
            cin = groups * rng.randint(1, 2) + 1
        elif bad == "in":
            pass  # input channel mismatch, applied below
        elif bad == "stride0":
            kw["stride"] = 0
        elif bad == "outpad":
            kw["output_padding"] = 3
        elif bad == "mode":
            kw["padding_mode"] = "reflect" if transposed else "circular"
            kw["padding"] = 5
        elif bad == "pad":
            kw["padding"] = -1
    else:
        bad = None
    args = [cin, cout, k]
    parts = [fmt(a) for a in args]
    if groups != 1:
        kw["groups"] = groups
    parts += ["%s=%s" % (key, fmt(v)) for key, v in kw.items()]
    text = "%s(%s)" % (name, ", ".join(parts))
    batch = rng.randint(1, 3)
    # Mostly sizes the kernel fits, sometimes smaller (PyTorch must reject).
    kk = k if isinstance(k, tuple) else (k,) * nsp
    dd = kw.get("dilation", 1)
    dd = dd if isinstance(dd, tuple) else (dd,) * nsp
    spatial = []
    for i in range(nsp):
        span = dd[i] * (kk[i] - 1) + 1
        lo = 1 if rng.random() < 0.1 else max(1, span - 2)
        room = (100 if nsp == 1 else 40 if nsp == 2 else 8) if depthwise else (6 if nsp < 3 else 3)
        spatial.append(rng.randint(lo, span + room))
    in_ch = cin + (1 if bad == "in" else 0)
    return text, name, [batch, in_ch] + spatial


def main():
    warnings.filterwarnings("ignore")
    seed = common.test_seed()
    rng = random.Random(seed)
    torch.manual_seed(seed)
    n_cases = int(os.environ.get("CNN_LIVE_CASES", "300"))
    t = common.Tally()
    checked = rejected = 0
    worst = 0.0
    for case in range(n_cases):
        text, name, xshape = random_config(rng, allow_invalid=True)
        x32 = torch.randn(*xshape).float()
        try:
            m = eval("torch.nn." + text).double()
            x = x32.double().requires_grad_(True)
            y = m(x)
            torch_err = None
        except Exception as e:  # PyTorch rejects this configuration
            torch_err = "%s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else "")
            if os.environ.get("CNN_LIVE_VERBOSE"):
                print("rejected: %s %s: %s" % (text, xshape, torch_err))
        if torch_err is None and y.numel() == 0:
            continue
        if torch_err is not None:
            r = common.run_cnn(text + "\n", {"input": x32.numpy()})
            rejected += 1
            t.ok(r.rc == 1 and r.stderr.strip() != "" and "left behind" not in r.stderr,
                 "case %d: PyTorch rejects %s on input %s (%s) but cnn exited %d: %s"
                 % (case, text, xshape, torch_err, r.rc, r.stderr.strip()[:300]))
            continue
        # float32 copies of the parameters are what cnn gets; PyTorch computes
        # in float64 from exactly those values.
        weights = {}
        for pname, p in m.named_parameters():
            p32 = p.detach().float()
            with torch.no_grad():
                p.copy_(p32.double())
            weights["0." + pname] = p32.numpy()
        y = m(x)
        gy32 = torch.randn(*y.shape).float()
        y.backward(gy32.double())
        r = common.run_cnn(text + "\n", {"input": x32.numpy()}, weights, gy32.numpy())
        checked += 1
        if not t.ok(r.rc == 0, "case %d: %s on %s: cnn failed (%d): %s" % (case, text, xshape, r.rc, r.stderr.strip()[:400])):
            continue
        pairs = [("output", r.output.get("output"), y.detach().numpy()),
                 ("grad input", r.grads.get("input"), x.grad.numpy())]
        for pname, p in m.named_parameters():
            pairs.append(("grad " + pname, r.grads.get("0." + pname), p.grad.numpy()))
        for what, got, want in pairs:
            if got is None:
                t.ok(False, "case %d: %s: cnn wrote no %s" % (case, text, what))
                continue
            e = common.max_rel_err(got, want)
            worst = max(worst, e)
            t.ok(e <= TOL, "case %d: %s on %s: %s differs, relative error %.3g (shape %s vs %s)"
                 % (case, text, xshape, what, e, np.shape(got), np.shape(want)))
    print("%d configurations compared with PyTorch (worst relative error %.3g), %d rejected by both"
          % (checked, worst, rejected))
    t.finish()


if __name__ == "__main__":
    main()
