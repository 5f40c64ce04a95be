"""Live randomized comparison of the pooling family with the installed
PyTorch: MaxPool, AvgPool, AdaptiveMaxPool, AdaptiveAvgPool (1d/2d/3d) and
MaxUnpool, with every option, tuple and list forms, odd sizes, unbatched and
empty-batch inputs, ties, NaN and -inf, Sequential models whose first module
takes (input, indices), MaxPool feeding MaxUnpool in a Sequential, and the
graph form with MaxUnpool's output_size. Output, indices (exactly) and the
input gradient are compared with PyTorch's float64 result; configurations
PyTorch rejects (at construction, forward or backward) must be rejected by
cnn with a message and exit status 1."""
import os
import random
import time
import warnings

import numpy as np
import torch
import torch.nn as nn

import common

TOL = 1e-5


def pick_size(rng, nsp, lo, hi, one_tuple=True):
    """An int, a tuple/list of nsp ints, or (for 2d/3d) a 1-tuple."""
    r = rng.random()
    if r < 0.45:
        return rng.randint(lo, hi)
    if nsp > 1 and one_tuple and r < 0.55:
        return (rng.randint(lo, hi),)
    t = tuple(rng.randint(lo, hi) for _ in range(nsp))
    return list(t) if rng.random() < 0.2 else t


def per_dim(v, nsp):
    if isinstance(v, (tuple, list)):
        return list(v) * nsp if len(v) == 1 else list(v)
    return [v] * nsp


# Constructor arguments after the first, in PyTorch's order.
SIG = {"max": ["stride", "padding", "dilation", "return_indices", "ceil_mode"],
       "avg": ["stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"],
       "unpool": ["stride", "padding"]}


def positional(rng, pos, kw, sig):
    """Sometimes passes the leading keyword arguments by position (kw is
    changed in place); returns the positional list."""
    if rng.random() < 0.3:
        for name in sig:
            if name not in kw:
                break
            pos.append(kw.pop(name))
    return pos


def call(name, pos, kw):
    parts = [repr(a) for a in pos] + ["%s=%r" % (k, v) for k, v in kw.items()]
    return "%s(%s)" % (name, ", ".join(parts))


def window_module(rng, kind, nsp, bad):
    """Constructor text of a MaxPool/AvgPool with random options."""
    name = ("MaxPool%dd" if kind == "max" else "AvgPool%dd") % nsp
    k = pick_size(rng, nsp, 1, 4 if nsp < 3 else 3)
    kw = {}
    if rng.random() < 0.6:
        kw["stride"] = pick_size(rng, nsp, 1, 3) if rng.random() < 0.9 else rng.choice([None, ()])
    if rng.random() < 0.6:
        kd = per_dim(k, nsp)
        kw["padding"] = tuple(rng.randint(0, x // 2) for x in kd) if rng.random() < 0.5 \
            else min(kd) // 2
    if kind == "max":
        if rng.random() < 0.4:
            kw["dilation"] = pick_size(rng, nsp, 1, 3)
        if rng.random() < 0.5:
            # Only its truth value counts (Python's "if").
            kw["return_indices"] = rng.choice([True, True, True, False, 1, 0, None])
    else:
        if rng.random() < 0.4:
            kw["count_include_pad"] = rng.random() < 0.5
        if nsp > 1 and rng.random() < 0.3:
            kw["divisor_override"] = rng.choice([1, 2, 3, 5, -2, 7])
    if rng.random() < 0.5:
        kw["ceil_mode"] = rng.random() < 0.7
    if bad == "args":
        b = rng.choice(["pad", "stride0", "kernel0", "neg", "dil0", "ceil_int", "cip_int",
                        "divisor0", "divisor_float", "float_kernel", "tuple_len", "kwarg",
                        "big", "padding_none", "bool_item"])
        if b == "pad":
            kw["padding"] = per_dim(k, nsp)[0] // 2 + 1
        elif b == "stride0":
            kw["stride"] = 0
        elif b == "kernel0":
            k = 0
        elif b == "neg":
            kw[rng.choice(["stride", "padding"])] = -1
        elif b == "dil0":
            kw["dilation"] = 0
        elif b == "ceil_int":
            kw["ceil_mode"] = rng.choice([0, 1, None])
        elif b == "cip_int":
            kw["count_include_pad"] = rng.choice([0, 1])
        elif b == "divisor0":
            kw["divisor_override"] = 0
        elif b == "divisor_float":
            kw["divisor_override"] = rng.choice([2.0, True])
        elif b == "float_kernel":
            k = rng.choice([2.0, True, (2, 2.0)])
        elif b == "tuple_len":
            kw[rng.choice(["stride", "padding"])] = tuple([1] * (nsp + 1))
        elif b == "kwarg":
            kw[rng.choice(["dilation", "return_indices", "divisor_override", "bias"])] = 1
        elif b == "big":
            k = 2 ** 31
        elif b == "padding_none":
            kw["padding"] = None
        elif b == "bool_item":
            # PyTorch reads a bool as an int inside a tuple, except first.
            v = [1] * nsp
            v[rng.randrange(nsp)] = True
            if rng.random() < 0.5:
                kw[rng.choice(["stride", "dilation"] if kind == "max" else ["stride"])] = tuple(v)
            else:
                k = tuple(True if x is True else 2 for x in v)
    return call(name, positional(rng, [k], kw, SIG[kind]), kw), k, kw


def adaptive_module(rng, kind, nsp, bad):
    name = ("AdaptiveMaxPool%dd" if kind == "amax" else "AdaptiveAvgPool%dd") % nsp
    r = rng.random()
    if r < 0.4:
        size = rng.randint(1, 6)
    else:
        size = tuple(None if nsp > 1 and rng.random() < 0.25 else rng.randint(1, 6)
                     for _ in range(nsp))
        if rng.random() < 0.2:
            size = list(size)
    kw = {}
    if kind == "amax" and rng.random() < 0.5:
        kw["return_indices"] = rng.random() < 0.8
    if bad == "args":
        b = rng.choice(["neg", "len", "none", "float", "zero", "kwarg", "bool_item"])
        if b == "neg":
            size = -1 if rng.random() < 0.5 else tuple([2] * (nsp - 1) + [-2])
        elif b == "len":
            size = tuple([2] * (nsp + 1)) if rng.random() < 0.5 else ()
        elif b == "none":
            size = None if rng.random() < 0.5 else (None,) * nsp
        elif b == "float":
            size = 2.0
        elif b == "zero":
            size = 0
        elif b == "kwarg":
            kw["return_indices" if kind == "aavg" else "ceil_mode"] = True
        elif b == "bool_item":
            v = [rng.choice([2, None]) if nsp > 1 else 2 for _ in range(nsp)]
            v[rng.randrange(nsp)] = rng.choice([True, False])
            size = tuple(v)
    return call(name, [size], kw)


def spatial_for(rng, k, kw, nsp, small):
    """Input sizes that mostly fit the (dilated) window."""
    kd = per_dim(k, nsp) if not isinstance(k, float) else [2] * nsp
    dd = per_dim(kw.get("dilation", 1), nsp)
    out = []
    for i in range(nsp):
        try:
            span = int(dd[i] if i < len(dd) else 1) * (int(kd[i] if i < len(kd) else 1) - 1) + 1
        except (TypeError, ValueError):
            span = 2
        span = max(1, min(span, 9))
        lo = 1 if small else max(1, span - 2)
        out.append(rng.randint(lo, span + (5 if nsp < 3 else 3)))
    return out


def input_tensor(rng, shape, special):
    x = torch.randn(*shape)
    if special == "ties" and x.numel():
        x = torch.round(x * 2) / 2
    elif special == "nonfinite" and x.numel():
        flat = x.view(-1)
        for _ in range(max(1, flat.numel() // 10)):
            flat[rng.randrange(flat.numel())] = rng.choice([float("nan"), float("-inf"), float("inf")])
    return x


def batch_shape(rng, nsp, spatial, bad, allow_unbatched=True):
    """(N, C, *spatial) or (C, *spatial); sometimes empty or wrongly shaped."""
    c = rng.randint(1, 3)
    if bad == "shape":
        b = rng.choice(["ndim_low", "ndim_high", "zero_c", "zero_sp"])
        if b == "ndim_low":
            return spatial
        if b == "ndim_high":
            return [1, 2, c] + spatial
        if b == "zero_c":
            return [2, 0] + spatial
        sp = list(spatial)
        sp[rng.randrange(nsp)] = 0
        return [2, c] + sp
    if allow_unbatched and rng.random() < 0.15:
        return [c] + spatial
    n = 0 if rng.random() < 0.03 else rng.randint(1, 3)
    return [n, c] + spatial


def seq_forward(mods, *inputs):
    vals = inputs
    for m in mods:
        y = m(*vals)
        vals = y if isinstance(y, tuple) else (y,)
    return vals


def make_case(rng):
    """A random case: model text, cnn inputs (float32 / int64 numpy), and a
    function computing PyTorch's result from float64 inputs."""
    kind = rng.choice(["max", "max", "avg", "avg", "amax", "aavg", "unpool", "unpool_seq",
                       "unpool_graph"])
    nsp = rng.choice([1, 2, 2, 3])
    r = rng.random()
    bad = "args" if r < 0.12 else "shape" if r < 0.18 else "small" if r < 0.24 else None
    special = rng.choice([None] * 6 + ["ties", "nonfinite"])
    if kind in ("max", "avg"):
        text, k, kw = window_module(rng, kind, nsp, bad)
        spatial = spatial_for(rng, k, kw, nsp, bad == "small")
        shape = batch_shape(rng, nsp, spatial, bad)
        x = input_tensor(rng, shape, special)
        case = dict(kind=kind, text=text, inputs={"input": x}, grad_input="input")

        def fn(xd):
            m = eval("nn." + text)
            ys = seq_forward([m], xd["input"])
            if kind == "max" and xd["input"].requires_grad:
                case["bad_plane"] = out_of_plane(m, nsp, xd["input"])
            return ys
        case["fn"] = fn
        return case
    if kind in ("amax", "aavg"):
        text = adaptive_module(rng, kind, nsp, bad)
        spatial = [rng.randint(1, 8 if nsp < 3 else 5) for _ in range(nsp)]
        shape = batch_shape(rng, nsp, spatial, bad)
        x = input_tensor(rng, shape, special)
        return dict(kind=kind, text=text, inputs={"input": x}, grad_input="input",
                    fn=lambda xd, text=text: seq_forward([eval("nn." + text)], xd["input"]))
    return unpool_case(rng, kind, nsp, bad, special)


def unpool_case(rng, kind, nsp, bad, special):
    # The pooling whose indices the unpooling inverts.
    k = [rng.randint(1, 3) for _ in range(nsp)]
    s = [rng.randint(1, 3) for _ in range(nsp)]
    p = [rng.randint(0, x // 2) for x in k]
    pool_kw = {"stride": tuple(s), "padding": tuple(p), "return_indices": True}
    if rng.random() < 0.3:
        pool_kw["ceil_mode"] = True
    pool_text = call("MaxPool%dd" % nsp, [tuple(k)], pool_kw)
    ukw = {}
    kk = k[0] if len(set(k)) == 1 and rng.random() < 0.5 else tuple(k)
    if s != k or rng.random() < 0.3:
        ukw["stride"] = s[0] if len(set(s)) == 1 and rng.random() < 0.5 else tuple(s)
    if any(p) or rng.random() < 0.2:
        ukw["padding"] = p[0] if len(set(p)) == 1 and rng.random() < 0.5 else tuple(p)
    if bad == "args":
        b = rng.choice(["kernel_len", "stride_len", "stride0", "kernel_none", "kwarg", "neg",
                        "bool_item"])
        if b == "kernel_len":
            kk = tuple([2] * (nsp + 1))
        elif b == "stride_len":
            ukw["stride"] = tuple([2] * (nsp - 1)) if nsp > 1 else ()
        elif b == "stride0":
            ukw["stride"] = 0
        elif b == "kernel_none":
            kk = None
        elif b == "kwarg":
            ukw["dilation"] = 1
        elif b == "neg":
            ukw["padding"] = 3
        elif b == "bool_item":
            v = list(s)
            v[rng.randrange(nsp)] = True
            ukw[rng.choice(["stride", "padding"])] = tuple(v) if rng.random() < 0.8 else True
    unpool_text = call("MaxUnpool%dd" % nsp, positional(rng, [kk], ukw, SIG["unpool"]), ukw)
    # Pool input: mostly the size unpooling restores by default.
    spatial = []
    for i in range(nsp):
        lo = max(1, k[i] - 2 * p[i])
        spatial.append(rng.randint(lo, lo + 5 if nsp < 3 else lo + 3))
    shape = batch_shape(rng, nsp, spatial, bad if bad == "shape" else None)
    x = input_tensor(rng, shape, special)
    if kind == "unpool_seq":
        if bad == "small":  # MaxUnpool then lacks its indices
            pool_text = pool_text.replace("return_indices=True", "return_indices=False")
        return dict(kind=kind, text=pool_text + "\n" + unpool_text, inputs={"input": x},
                    grad_input="input",
                    fn=lambda xd: seq_forward([eval("nn." + pool_text), eval("nn." + unpool_text)],
                                              xd["input"]))
    if kind == "unpool_graph":
        osz = None
        if rng.random() < 0.8:
            # Around the default size: PyTorch accepts only strictly within one stride.
            try:
                dims = shape[-nsp:]
                pooled = [((dims[i] + 2 * p[i] - k[i] + (s[i] - 1 if pool_kw.get("ceil_mode") else 0)) // s[i]) + 1
                          for i in range(nsp)]
                osz = [(pooled[i] - 1) * s[i] + k[i] - 2 * p[i] + rng.randint(-s[i], s[i])
                       for i in range(nsp)]
            except (TypeError, IndexError):
                osz = [2] * nsp
            if rng.random() < 0.2:
                osz = [shape[0], shape[1]] + osz if len(shape) == nsp + 2 else [1, 1] + osz
            osz = tuple(osz) if rng.random() < 0.7 else list(osz)
            if bad == "small":
                osz = rng.choice([5, tuple([3] * (nsp + 1)), None])
        fwd = "" if osz is None else ", output_size=%r" % (osz,)
        text = "p, idx = %s(input)\nu = %s(p, idx%s)" % (pool_text, unpool_text, fwd)

        def fn(xd, osz=osz):
            y, i = eval("nn." + pool_text)(xd["input"])
            m = eval("nn." + unpool_text)
            return (m(y, i) if osz is None else m(y, i, output_size=osz),)
        return dict(kind=kind, text=text, inputs={"input": x}, grad_input="input", fn=fn)
    # Sequential whose first module is MaxUnpool: inputs "input" and "indices".
    with torch.no_grad():
        try:
            y, idx = eval("nn." + pool_text)(x)
        except Exception:  # the pool itself is invalid for this input: random data
            y = torch.randn(*shape)
            idx = torch.zeros(*shape, dtype=torch.long)
    if rng.random() < 0.25 and idx.numel():
        # Random indices into the default output plane, duplicates included.
        plane = 1
        for i in range(nsp):
            plane *= max(0, (y.shape[-nsp + i] - 1) * s[i] + k[i] - 2 * p[i])
        idx = torch.randint(0, max(plane, 1), idx.shape)
    if bad == "small" and idx.numel():
        b = rng.choice(["high", "neg", "shape"])
        flat = idx.view(-1)
        if b == "high":
            flat[rng.randrange(flat.numel())] = 10 ** 6
        elif b == "neg":
            flat[rng.randrange(flat.numel())] = -1
        else:
            idx = idx.reshape(-1)[:-1] if idx.numel() > 1 else torch.zeros(2, dtype=torch.long)
    xin = torch.randn(*y.shape) if special is None else input_tensor(rng, y.shape, special)
    return dict(kind="unpool", text=unpool_text, inputs={"input": xin, "indices": idx},
                grad_input="input",
                fn=lambda xd: seq_forward([eval("nn." + unpool_text)], xd["input"], xd["indices"]))


def compare(got, want):
    """Relative error on the finite entries; inf when the non-finite
    entries (NaN, +-inf) differ in place or kind."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return float("inf")
    fw, fg = np.isfinite(want), np.isfinite(got)
    if not np.array_equal(fw, fg):
        return float("inf")
    nf = ~fw
    if not (np.array_equal(np.isnan(got[nf]), np.isnan(want[nf])) and
            np.array_equal(got[nf & ~np.isnan(want)], want[nf & ~np.isnan(want)])):
        return float("inf")
    return common.max_rel_err(got[fw], want[fw])


def out_of_plane(m, nsp, x):
    """Whether max pooling m gives an index outside the plane, which PyTorch
    does for a window holding no input element (dilation stepping over the
    input): its backward then writes into the next plane or past the buffer,
    which cnn does not copy, so that gradient is not compared."""
    f = getattr(torch.nn.functional, "max_pool%dd" % nsp)
    with torch.no_grad():
        _, idx = f(x.detach(), m.kernel_size, m.stride, m.padding, m.dilation,
                   ceil_mode=m.ceil_mode, return_indices=True)
    return bool((idx >= int(np.prod(x.shape[-nsp:]))).any())


def check_forward(t, what, r, res):
    """Compares cnn's output and indices with PyTorch's; returns the error."""
    y = res["y"]
    got = r.output.get("output")
    e = compare(got, y.numpy()) if got is not None else float("inf")
    t.ok(e <= TOL, "%s: output differs, relative error %.3g (shape %s vs %s)"
         % (what, e, np.shape(got), tuple(y.shape)))
    if res["idx"] is not None:
        gi = r.output.get("indices")
        t.ok(gi is not None and gi.dtype == np.int64 and np.array_equal(gi, res["idx"].numpy()),
             "%s: indices differ: cnn %s, PyTorch %s"
             % (what, None if gi is None else gi.ravel()[:12], res["idx"].numpy().ravel()[:12]))
    return e


def run_torch(case, grad=True):
    """PyTorch's outputs and input gradient, or the error it raises. Without
    grad the inputs need no gradient, which sends some modules down another
    path with other checks (as in inference)."""
    xd = {}
    for name, v in case["inputs"].items():
        xd[name] = v.double().requires_grad_(grad) if v.dtype == torch.float32 else v
    try:
        ys = case["fn"](xd)
    except Exception as e:  # rejected at construction or forward
        return None, "%s: %s" % (type(e).__name__, (str(e).splitlines() or [""])[0])
    y = ys[0]
    idx = ys[1] if len(ys) > 1 else None
    res = {"y": y.detach(), "idx": idx, "gy": None, "gx": None, "backward_error": None}
    if y.numel() and y.requires_grad:
        gy = torch.randn(*y.shape).float()
        res["gy"] = gy
        if case.get("bad_plane"):
            return res, None  # PyTorch's backward would write out of bounds
        try:
            y.backward(gy.double())
            g = xd[case["grad_input"]].grad
            res["gx"] = g if g is not None else torch.zeros_like(xd[case["grad_input"]])
        except Exception as e:
            res["backward_error"] = "%s: %s" % (type(e).__name__, str(e).splitlines()[0])
    return res, None


def main():
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)  # MaxUnpool's duplicate indices: the last write wins
    seed = common.test_seed()
    rng = random.Random(seed)
    torch.manual_seed(seed)
    n_cases = int(os.environ.get("CNN_LIVE_CASES", "600"))
    t = common.Tally()
    checked = rejected = empty = skipped_grad = inference_only = 0
    worst = 0.0
    kinds = {}
    t0 = time.time()
    for case_no in range(n_cases):
        case = make_case(rng)
        text = case["text"]
        inputs = {k: v.numpy() for k, v in case["inputs"].items()}
        shapes = " ".join("%s%s" % (k, list(v.shape)) for k, v in inputs.items())
        what = "case %d: %s on %s" % (case_no, text.replace("\n", " | "), shapes)
        res, err = run_torch(case)
        if os.environ.get("CNN_LIVE_VERBOSE"):
            print(what, "->", err or "ok")
        if err is not None:
            res0, err0 = run_torch(case, grad=False)
            if err0 is None and "2147483648" in text:
                # MaxPool1d's inference path computes the output size of a
                # 2^31 kernel in 32-bit arithmetic, which wraps around into a
                # made-up size (17 outputs of a 13-long input, some -inf):
                # cnn must refuse it instead of copying the overflow.
                r = common.run_cnn(text + "\n", inputs)
                rejected += 1
                t.ok(r.rc == 1 and ("too small" in r.stderr or "wraps around" in r.stderr),
                     "%s: a 2^31 kernel must be refused (PyTorch's size wraps around) but cnn exited %d: %s"
                     % (what, r.rc, r.stderr.strip()[:300]))
                continue
            if err0 is None and min(res0["y"].shape) >= 0:
                # Accepted only without a gradient (MaxPool1d's inference path
                # allows an empty output; AdaptiveAvgPool1d/2d empty channels):
                # cnn must do the forward pass and refuse to plan a backward one.
                inference_only += 1
                r = common.run_cnn(text + "\n", inputs)
                if t.ok(r.rc == 0, "%s: PyTorch accepts it without a gradient but cnn failed (%d): %s"
                        % (what, r.rc, r.stderr.strip()[:300])):
                    check_forward(t, what, r, res0)
                r = common.run_cnn(text + "\n", inputs,
                                   grad_output=np.zeros(tuple(res0["y"].shape), np.float32))
                t.ok(r.rc == 1 and r.stderr.strip() != "",
                     "%s: PyTorch rejects it with a gradient (%s) but cnn with --backward exited "
                     "%d: %s" % (what, err, r.rc, r.stderr.strip()[:300]))
                continue
            r = common.run_cnn(text + "\n", inputs)
            rejected += 1
            t.ok(r.rc == 1 and r.stderr.strip() != "" and "left behind" not in r.stderr,
                 "%s: PyTorch rejects it (%s) but cnn exited %d: %s"
                 % (what, err, r.rc, r.stderr.strip()[:300]))
            continue
        y = res["y"]
        if min(y.shape) < 0:
            # MaxUnpool's size (in - 1) * stride + kernel - 2 * padding can be
            # negative; PyTorch then returns a tensor with a negative size when
            # another size is 0. cnn rejects every negative size.
            r = common.run_cnn(text + "\n", inputs)
            rejected += 1
            t.ok(r.rc == 1 and r.stderr.strip() != "",
                 "%s: PyTorch gives an invalid shape %s but cnn exited %d: %s"
                 % (what, tuple(y.shape), r.rc, r.stderr.strip()[:300]))
            continue
        kinds[case["kind"]] = kinds.get(case["kind"], 0) + 1
        if res["backward_error"] is not None:
            r = common.run_cnn(text + "\n", inputs, grad_output=torch.randn(*y.shape).numpy())
            rejected += 1
            t.ok(r.rc == 1 and r.stderr.strip() != "",
                 "%s: PyTorch's backward fails (%s) but cnn exited %d: %s"
                 % (what, res["backward_error"], r.rc, r.stderr.strip()[:300]))
            continue
        backward = res["gy"] is not None
        r = common.run_cnn(text + "\n", inputs, grad_output=res["gy"].numpy() if backward else None)
        checked += 1
        if not t.ok(r.rc == 0, "%s: cnn failed (%d): %s" % (what, r.rc, r.stderr.strip()[:400])):
            continue
        if not backward:
            empty += 1
        worst = max(worst, check_forward(t, what, r, res))
        if backward:
            if case.get("bad_plane"):
                skipped_grad += 1
                continue
            gx = r.grads.get("input")
            e = compare(gx, res["gx"].numpy()) if gx is not None else float("inf")
            worst = max(worst, e)
            t.ok(e <= TOL, "%s: input gradient differs, relative error %.3g" % (what, e))
    print("%d configurations compared with PyTorch (worst relative error %.3g; %d forward only, "
          "empty output), %d rejected by both, in %.1f s"
          % (checked, worst, empty, rejected, time.time() - t0))
    print("compared by kind: " + ", ".join("%s %d" % kv for kv in sorted(kinds.items())))
    if inference_only:
        print("%d configurations PyTorch accepts only without a gradient: forward compared, "
              "backward refused" % inference_only)
    if skipped_grad:
        print("%d gradients not compared (PyTorch's own backward writes out of bounds there)"
              % skipped_grad)
    t.finish()


if __name__ == "__main__":
    main()
