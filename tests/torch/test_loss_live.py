"""Live randomized comparison of the losses with the installed PyTorch:
MSELoss, L1Loss, SmoothL1Loss, CrossEntropyLoss, NLLLoss, BCELoss and
BCEWithLogitsLoss with random arguments (positional or keyword, legacy
size_average/reduce, weights written as tuples, lists, nested tuples or
torch.tensor(...)), random shapes (unbatched and spatial class losses, 0-d
and empty tensors) and random data, including PyTorch's special points: x
equal to the target (SmoothL1's kink), BCE inputs of exactly 0 and 1
(log clamped at -100), all targets ignored (NaN mean), huge logits.

Each model is "loss = Loss(...)(input, target)" with the target a model
input, run by `cnn run` forward and backward. For every configuration
PyTorch accepts, the loss, the input gradient and (float targets) the target
gradient are compared with PyTorch's float64 result from the same float32
values, within 1e-5 of the largest magnitude; non-finite values must match
exactly. Configurations and data PyTorch rejects (at construction, forward
or backward) must make cnn exit with status 1 and a message; so must a
target whose shape differs from the input's, which PyTorch broadcasts with
a warning and cnn refuses by design."""
import os
import random
import time
import warnings

import numpy as np
import torch
import torch.nn as nn

import common

TOL = 1e-5

SIGNATURES = {
    "MSELoss": ["size_average", "reduce", "reduction"],
    "L1Loss": ["size_average", "reduce", "reduction"],
    "SmoothL1Loss": ["size_average", "reduce", "reduction", "beta"],
    "CrossEntropyLoss": ["weight", "size_average", "ignore_index", "reduce", "reduction",
                         "label_smoothing"],
    "NLLLoss": ["weight", "size_average", "ignore_index", "reduce", "reduction"],
    "BCELoss": ["weight", "size_average", "reduce", "reduction"],
    "BCEWithLogitsLoss": ["weight", "size_average", "reduce", "reduction", "pos_weight"],
}
DEFAULTS = {"weight": None, "size_average": None, "ignore_index": -100, "reduce": None,
            "reduction": "mean", "label_smoothing": 0.0, "beta": 1.0, "pos_weight": None}


def f32(v):
    return float(np.float32(v))


class Weight:
    """A weight tensor, written in one of the model file's spellings."""

    def __init__(self, values, syntax):
        self.values = np.asarray(values)
        self.syntax = syntax  # tuple, list, tensor, tensor_int

    def _nest(self, a, open_, close):
        if a.ndim == 0:
            return repr(int(a)) if self.syntax == "tensor_int" else repr(float(a))
        items = [self._nest(x, open_, close) for x in a]
        if open_ == "(" and len(items) == 1:
            return "(%s,)" % items[0]
        return open_ + ", ".join(items) + close

    def text(self):
        if self.syntax == "tuple":
            return self._nest(self.values, "(", ")")
        if self.syntax == "list":
            return self._nest(self.values, "[", "]")
        return "torch.tensor(%s)" % self._nest(self.values, "[", "]")

    def torch(self):
        if self.syntax == "tensor_int":
            return torch.tensor(self.values.astype(np.int64))
        return torch.tensor(self.values.astype(np.float64))


def weight(rng, shape, lo=0.1, hi=2.0, allow_int=True):
    syntax = rng.choice(["tuple", "list", "tensor", "tensor"])
    if len(shape) != 1 and syntax in ("tuple", "list") and rng.random() < 0.5:
        syntax = "tensor"
    if len(shape) == 0:
        syntax = "tensor"
    if allow_int and rng.random() < 0.06:
        return Weight(np.array([rng.randint(0, 3) for _ in range(int(np.prod(shape)))]).reshape(shape),
                      "tensor_int")
    vals = np.array([f32(rng.uniform(lo, hi)) for _ in range(int(np.prod(shape)))]).reshape(shape)
    return Weight(vals, syntax)


def value_text(v):
    if isinstance(v, Weight):
        return v.text()
    if isinstance(v, float) and v != v:
        return "float('nan')"
    return repr(v)


def render(rng, name, kw):
    """The constructor call, some leading arguments positional."""
    sig = SIGNATURES[name]
    args = []
    if rng.random() < 0.25:
        last = max([sig.index(k) for k in kw] + [-1])
        npos = rng.randint(0, last + 1)
        args = [value_text(kw[k]) if k in kw else repr(DEFAULTS[k]) for k in sig[:npos]]
        rest = [k for k in kw if sig.index(k) >= npos]
    else:
        rest = list(kw)
        rng.shuffle(rest)
    args += ["%s=%s" % (k, value_text(kw[k])) for k in rest]
    return "%s(%s)" % (name, ", ".join(args))


def reduction_args(rng, kw):
    r = rng.random()
    if r < 0.12:
        # legacy: at least one of size_average and reduce given (None counts as absent)
        sa, rd = rng.choice([None, True, False]), rng.choice([True, False])
        if rng.random() < 0.5:
            sa, rd = rd, sa
        if sa is not None or rng.random() < 0.5:
            kw["size_average"] = sa
        kw["reduce"] = rd
        if rng.random() < 0.3:
            kw["reduction"] = rng.choice(["sum", "none", "bogus"])
    elif r < 0.15:
        kw["reduction"] = rng.choice(["avg", "Mean", ""])
    elif r < 0.85:
        kw["reduction"] = rng.choice(["mean", "sum", "none"])


def rand_shape(rng, lo_nd, hi_nd, empty=0.03):
    shape = [rng.randint(1, 4) for _ in range(rng.randint(lo_nd, hi_nd))]
    if shape and rng.random() < empty:
        shape[rng.randrange(len(shape))] = 0
    return tuple(shape)


def mismatched(rng, shape):
    """A different shape: broadcastable or not."""
    s = list(shape)
    r = rng.random()
    if r < 0.4 and s:
        return tuple(s[1:])
    if r < 0.7:
        return tuple([1] + s) if rng.random() < 0.5 else tuple(s + [2])
    if s:
        i = rng.randrange(len(s))
        s[i] = s[i] + 1 if s[i] != 1 else 3
    return tuple(s) if s else (2,)


def randn(rng_np, shape, scale=1.0):
    return (rng_np.standard_normal(shape) * scale).astype(np.float32)


def gen_pointwise(rng, rnp, name):
    kw = {}
    reduction_args(rng, kw)
    if name == "SmoothL1Loss":
        r = rng.random()
        if r < 0.25:
            kw["beta"] = 0.0
        elif r < 0.7:
            kw["beta"] = f32(rng.uniform(0.05, 2.0))
        elif r < 0.75:
            kw["beta"] = rng.choice([-0.5, -1e-3, float("nan"), -0.0, float("inf")])
        elif r < 0.8:
            kw["beta"] = 1
    shape = rand_shape(rng, 0, 4)
    x = randn(rnp, shape)
    if rng.random() < 0.15:
        t = rnp.integers(-2, 3, size=shape).astype(np.int64)
        if x.size and rng.random() < 0.6:
            m = rnp.random(shape) < 0.4
            x = np.where(m, t.astype(np.float32), x).astype(np.float32)
    else:
        t = randn(rnp, shape)
        if x.size and rng.random() < 0.3:
            m = rnp.random(shape) < 0.3
            t = np.where(m, x, t).astype(np.float32)
    if rng.random() < 0.06:
        ts = mismatched(rng, shape)
        t = randn(rnp, ts) if t.dtype == np.float32 else rnp.integers(-2, 3, size=ts).astype(np.int64)
    return kw, x, t, None


def gen_bce(rng, rnp, name):
    kw = {}
    reduction_args(rng, kw)
    shape = rand_shape(rng, 0, 4)
    logits = name == "BCEWithLogitsLoss"
    wkeys = ["weight", "pos_weight"] if logits else ["weight"]
    bad_config = False
    for key in wkeys:
        if rng.random() < 0.4:
            nd = rng.randint(0, len(shape))
            # (an empty weight cannot be written as a literal with its shape)
            ws = [d if rng.random() < 0.6 and d else 1 for d in shape[len(shape) - nd:]]
            if rng.random() < 0.06:
                ws = [d or 1 for d in mismatched(rng, tuple(ws))]
                bad_config = True
            kw[key] = weight(rng, tuple(ws), 0.1, 3.0)
    t = rnp.random(shape).astype(np.float32)
    if rng.random() < 0.3:
        t = np.round(t).astype(np.float32)
    fault = None
    if logits:
        x = randn(rnp, shape, 3.0)
        if x.size and rng.random() < 0.15:
            x.flat[rng.randrange(x.size)] = rng.choice([-60.0, 45.0, -800.0])
    else:
        x = rnp.random(shape).astype(np.float32)
        if x.size and rng.random() < 0.2:
            x.flat[rng.randrange(x.size)] = rng.choice([0.0, 1.0])
        if x.size and rng.random() < 0.06:
            bad = rng.choice([1.5, -0.25, float("nan"), 1.0000001])
            x.flat[rng.randrange(x.size)] = bad
            fault = "between 0 and 1"
    r = rng.random()
    if r < 0.04:
        t = randn(rnp, mismatched(rng, shape))
        bad_config = True
    elif r < 0.07:
        t = np.round(t).astype(np.int64)
        bad_config = True
    return kw, x, t, None if bad_config else fault


def gen_class(rng, rnp, name):
    kw = {}
    reduction_args(rng, kw)
    ce = name == "CrossEntropyLoss"
    r = rng.random()
    C = rng.randint(1, 6) if rng.random() > 0.03 else 0
    if r < 0.15:
        shape = (C,)
    elif r < 0.6:
        shape = (rng.randint(1, 5), C)
    else:
        shape = (rng.randint(1, 3), C) + tuple(rng.randint(1, 3) for _ in range(rng.randint(1, 3)))
    if rng.random() < 0.03:
        shape = (0,) + shape[1:] if len(shape) > 1 else shape
    idx_shape = shape[:1] + shape[2:] if len(shape) > 1 else ()
    x = randn(rnp, shape, 2.0)
    if not ce and rng.random() < 0.5 and x.size:
        x = torch.log_softmax(torch.tensor(x), 0 if len(shape) == 1 else 1).numpy().astype(np.float32)
    if ce and x.size and rng.random() < 0.1:
        x.flat[rng.randrange(x.size)] = rng.choice([80.0, -90.0, 300.0])
    probs = ce and rng.random() < 0.3
    fault = None
    if probs:
        if rng.random() < 0.5:
            t = torch.softmax(torch.tensor(randn(rnp, shape)), 0 if len(shape) == 1 else 1).numpy()
        else:
            t = rnp.random(shape)
        t = t.astype(np.float32)
        if rng.random() < 0.08:
            kw["ignore_index"] = rng.randint(0, 3)
        elif rng.random() < 0.1:
            kw["ignore_index"] = rng.choice([-1, -100, -7])
        if rng.random() < 0.04:
            t = t.astype(np.int64)
    else:
        ign = -100
        if rng.random() < 0.4:
            ign = rng.choice([-1, -5, 0, C - 1, C, 7])
            kw["ignore_index"] = ign
        if C == 0:
            # no class exists: only ignore_index is a valid target
            t = np.full(idx_shape, ign if rng.random() < 0.8 else 0, dtype=np.int64)
        else:
            t = rnp.integers(0, C, size=idx_shape).astype(np.int64)
        if t.size and C:
            if rng.random() < 0.4:
                t = np.where(rnp.random(idx_shape) < 0.3, ign, t).astype(np.int64)
            if rng.random() < 0.05:
                t = np.full(idx_shape, ign, dtype=np.int64)
            if rng.random() < 0.06:
                bad = rng.choice([C, C + 3, -1, -2, 1000])
                t.flat[rng.randrange(t.size)] = bad
                if bad != ign:
                    fault = "target[%s] is %d" % (", ".join(
                        str(int(i)) for i in np.argwhere(t == bad)[0]) if t.ndim else "", bad)
                    fault = fault.replace("target[]", "target")
        r = rng.random()
        if r < 0.03:
            t = randn(rnp, idx_shape)
        elif r < 0.06:
            t = rnp.integers(0, max(C, 1), size=mismatched(rng, idx_shape)).astype(np.int64)
    if rng.random() < 0.4:
        n = C if rng.random() > 0.06 else C + rng.choice([-1, 1])
        ws = (n,) if rng.random() > 0.08 else rng.choice([(1, n), (n, 1), (), (n, 1, 1)])
        if ws == () and n != 1:
            ws = (n,)
        kw["weight"] = weight(rng, ws if n > 0 else (1,), 0.1, 2.5)
    if ce and rng.random() < 0.4:
        r = rng.random()
        # PyTorch refuses only values above 1; negative and NaN mean none
        kw["label_smoothing"] = (rng.choice([1.0, 0.5, 0]) if r < 0.15 else
                                 rng.choice([1.5, 1.0000001, float("inf"), -0.1, float("nan"),
                                             float("-inf")]) if r < 0.25 else f32(rng.uniform(0, 1)))
    return kw, x, t, fault


GENERATORS = {"MSELoss": gen_pointwise, "L1Loss": gen_pointwise, "SmoothL1Loss": gen_pointwise,
              "BCELoss": gen_bce, "BCEWithLogitsLoss": gen_bce, "CrossEntropyLoss": gen_class,
              "NLLLoss": gen_class}


def effective_reduction(kw):
    """The reduction PyTorch derives from reduction, size_average and reduce."""
    sa, rd = kw.get("size_average"), kw.get("reduce")
    if sa is None and rd is None:
        return kw.get("reduction", "mean")
    return torch.nn._reduction.legacy_get_string(sa, rd, emit_warning=False)


def refused_by_design(name, kw, x32, t):
    """Why cnn refuses a configuration PyTorch computes, or None."""
    if name == "NLLLoss" and x32.ndim == 1 and t.shape == x32.shape and t.dtype == np.int64:
        # PyTorch 1.13 takes a (C) target of an unbatched (C) input, and
        # silently uses only its first element
        return "a 1-d target for an unbatched input"
    w = kw.get("weight")
    smoothing = kw.get("label_smoothing", 0.0)
    if (name == "CrossEntropyLoss" and t.dtype == np.int64 and x32.ndim >= 3 and
            isinstance(w, Weight) and w.values.ndim > 1 and smoothing > 0 and
            effective_reduction(kw) == "mean"):
        # Smoothing's 'mean' gathers the counted targets' weights from the
        # weight as if it were 1-d. PyTorch's gather refuses a weight of more
        # dimensions whenever one target counts, and accepts it only when
        # every target is ignore_index (an empty gather, and a loss of 0/0).
        # cnn checks shapes before it sees the data, so it always refuses.
        return "a weight of %d dimensions with label smoothing and reduction 'mean'" % (
            w.values.ndim)
    return None


def torch_run(name, kw, x32, t, gy_rng):
    """PyTorch's float64 result: (y, grad x, grad t, gy32), or raises; the
    stage that failed is in the exception's `stage` attribute. A target size
    that PyTorch only warns about raises too."""
    args = {k: (v.torch() if isinstance(v, Weight) else v) for k, v in kw.items()}
    stage = "construction"
    try:
        m = getattr(nn, name)(**args)
        x = torch.tensor(x32, dtype=torch.float64, requires_grad=True)
        if t.dtype == np.float32:
            tt = torch.tensor(t, dtype=torch.float64, requires_grad=True)
        else:
            tt = torch.tensor(t)
        stage = "forward"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            y = m(x, tt)
        for w in caught:
            if "target size" in str(w.message):
                raise ValueError("PyTorch warns: " + str(w.message).splitlines()[0])
        gy32 = randn(gy_rng, tuple(y.shape))
        stage = "backward"
        y.backward(torch.tensor(gy32, dtype=torch.float64))
    except Exception as e:  # noqa: BLE001 -- any refusal by PyTorch counts
        e.stage = stage
        e.y_shape = tuple(y.shape) if stage == "backward" else None
        raise
    return y.detach().numpy(), x.grad.numpy(), tt.grad.numpy() if tt.grad is not None else None, gy32


def compare(got, want):
    """Max error relative to the largest finite magnitude; inf unless the
    non-finite values agree exactly."""
    if got is None:
        return float("inf")
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return float("inf")
    fin = np.isfinite(want)
    if not np.array_equal(np.isfinite(got), fin):
        return float("inf")
    if not np.array_equal(got[~fin], want[~fin], equal_nan=True):
        return float("inf")
    return common.max_rel_err(got[fin], want[fin])


def main():
    warnings.filterwarnings("ignore")
    seed = common.test_seed()
    rng = random.Random(seed)
    rnp = np.random.default_rng(seed)
    torch.manual_seed(seed)
    n_cases = int(os.environ.get("CNN_LIVE_CASES", "400"))
    t = common.Tally()
    checked = rejected = 0
    worst = 0.0
    start = time.time()
    names = list(SIGNATURES)
    for case in range(n_cases):
        name = names[case % len(names)] if case < len(names) else rng.choice(names)
        kw, x32, tgt, fault = GENERATORS[name](rng, rnp, name)
        text = "target = Input()\nloss = %s(input, target)\n" % render(rng, name, kw)
        inputs = {"input": x32, "target": tgt}
        desc = "case %d: %s\ninput %s, target %s %s" % (case, text.strip(), x32.shape, tgt.dtype,
                                                        tgt.shape)
        try:
            why = refused_by_design(name, kw, x32, tgt)
            if why:
                raise ValueError(why)
            y, gx, gt, gy32 = torch_run(name, kw, x32, tgt, rnp)
        except Exception as e:  # noqa: BLE001
            if not why:
                why = "%s at %s: %s" % (type(e).__name__, e.stage,
                                        str(e).splitlines()[0] if str(e) else "")
            gy = randn(rnp, e.y_shape) if getattr(e, "y_shape", None) is not None else None
            r = common.run_cnn(text, inputs, grad_output=gy)
            rejected += 1
            ok = r.rc == 1 and r.stderr.strip().startswith("cnn run:") and "left behind" not in r.stderr
            if ok and fault and ("out of bounds" in why or "between 0 and 1" in why):
                # a bad value is named in the message, and for a class index the valid range
                ok = fault in r.stderr and ("between" in fault or "must be in [0, " in r.stderr)
            t.ok(ok, "%s\nPyTorch refuses (%s) but cnn exited %d: %s"
                 % (desc, why, r.rc, r.stderr.strip()[:400]))
            continue
        r = common.run_cnn(text, inputs, grad_output=gy32)
        checked += 1
        if not t.ok(r.rc == 0, "%s\ncnn failed (%d): %s" % (desc, r.rc, r.stderr.strip()[:400])):
            continue
        pairs = [("loss", r.output.get("output"), y), ("grad input", r.grads.get("input"), gx)]
        if gt is not None:
            pairs.append(("grad target", r.grads.get("target"), gt))
        elif "target" in r.grads:
            pairs.append(("grad target (int64: none expected)", None, np.zeros(0)))
        for what, got, want in pairs:
            e = compare(got, want)
            if np.isfinite(e):
                worst = max(worst, e)
            t.ok(e <= TOL, "%s\n%s differs: relative error %.3g\ncnn %s\nPyTorch %s"
                 % (desc, what, e, got, want))
    print("%d loss configurations compared with PyTorch (worst relative error %.3g), "
          "%d rejected by both, %.1f s" % (checked, worst, rejected, time.time() - start))
    t.finish()


if __name__ == "__main__":
    main()
