"""Live randomized comparison of the activation and dropout family with the
installed PyTorch: random modules with every option (positional and keyword
arguments, inplace, the deprecated Hardtanh aliases, implicit and negative
softmax dims, per-channel PReLU with given or default weights), inputs of rank
0 to 5 at scales up to 30 with values put exactly on the kinks, eval and
training mode, and short chains of modules. Output, input gradient and PReLU's
weight gradient must match PyTorch's float64 result within 1e-5 of the
largest magnitude; configurations PyTorch rejects (at construction, forward
or backward) must make `cnn run` exit with status 1 and a message.

RReLU, Dropout and Dropout2d in training draw randomly, so for them the law
is checked through `cnn run --train --seed N`: slopes in [lower, upper], kept
values scaled by 1/(1-p) and the others 0, whole slices for Dropout2d,
gradients by the same factors, and the same draw for the same seed."""
import os
import random
import warnings

import numpy as np
import torch

import common

TOL = 1e-5
BOOLS = ["True", "False", "1", "0"]


def call(name, rng, args):
    """Module text from (name, value-text) pairs in signature order: a
    random-length prefix positional, the rest by keyword."""
    given = [(k, v) for k, v in args if v is not None]
    names = [k for k, _ in args]
    parts, positional = [], True
    for k, v in given:
        # Positional only while every earlier argument of the signature is given.
        idx = names.index(k)
        if positional and all(n in dict(given) for n in names[:idx]) and rng.random() < 0.4:
            parts.append(v)
        else:
            positional = False
            parts.append("%s=%s" % (k, v))
    return "%s(%s)" % (name, ", ".join(parts))


def maybe(rng, prob, value):
    return value if rng.random() < prob else None


def num(rng, lo, hi):
    return repr(round(rng.uniform(lo, hi), 3))


# PyTorch's autograd refuses an in-place module whose input the previous
# module needs for its own backward (Tanh then SiLU(inplace=True)); cnn keeps
# every value, so it has no such failure. Chains are generated without inplace.
INPLACE = {"allowed": True}


def inplace_arg(rng):
    if not INPLACE["allowed"]:
        return maybe(rng, 0.2, "False")
    return maybe(rng, 0.35, rng.choice(BOOLS))


# Each maker returns (text, info): info["kinks"] are input values worth
# hitting exactly, info["random"] is set for the layers that draw in training.
def m_simple(name):
    def make(rng, shape):
        return name + "()", {"kinks": [0.0]}
    return make


def m_inplace(name, kinks):
    def make(rng, shape):
        return call(name, rng, [("inplace", inplace_arg(rng))]), {"kinks": kinks}
    return make


def m_leaky(rng, shape):
    slope = maybe(rng, 0.7, rng.choice([num(rng, -1, 1.5), "0.2", "0", "-0.1", "1"]))
    return call("LeakyReLU", rng, [("negative_slope", slope), ("inplace", inplace_arg(rng))]), {"kinks": [0.0]}


def m_elu(rng, shape):
    alpha = maybe(rng, 0.7, rng.choice([num(rng, -2, 2), "0.5", "1", "0"]))
    return call("ELU", rng, [("alpha", alpha), ("inplace", inplace_arg(rng))]), {"kinks": [0.0]}


def m_gelu(rng, shape):
    appr = maybe(rng, 0.7, rng.choice(["'none'", "'tanh'", '"tanh"']))
    return call("GELU", rng, [("approximate", appr)]), {"kinks": [0.0]}


def m_hardtanh(rng, shape):
    lo = round(rng.uniform(-3, 1), 2)
    hi = round(lo + rng.uniform(0.25, 4), 2)
    args = [("min_val", maybe(rng, 0.6, repr(lo))), ("max_val", maybe(rng, 0.6, repr(hi))),
            ("inplace", inplace_arg(rng)), ("min_value", None), ("max_value", None)]
    r = rng.random()
    if r < 0.15:
        args[3] = ("min_value", repr(lo))
        args[0] = ("min_val", maybe(rng, 0.5, "-5.0"))
    elif r < 0.3:
        args[4] = ("max_value", repr(hi))
        args[1] = ("max_val", maybe(rng, 0.5, "7.0"))
    elif r < 0.35:
        args[3] = ("min_value", "None")
    return call("Hardtanh", rng, args), {"kinks": [lo, hi, -1.0, 1.0]}


def m_softplus(rng, shape):
    beta = rng.choice(["1", "2", "0.5", "-1.5", "10", num(rng, 0.2, 4)])
    thr = rng.choice(["20", "5", "1", "-2", "30", num(rng, -1, 15)])
    args = [("beta", maybe(rng, 0.7, beta)), ("threshold", maybe(rng, 0.7, thr))]
    text = call("Softplus", rng, args)
    b = float(dict(args)["beta"] or 1)
    t = float(dict(args)["threshold"] or 20)
    return text, {"kinks": [t / b, 0.0]}


def m_prelu(rng, shape):
    ch = shape[1] if len(shape) > 1 else 1
    n = rng.choice([None, "1", repr(ch), repr(ch)])
    init = maybe(rng, 0.5, rng.choice([num(rng, -1, 1), "0.25", "0", "1"]))
    return call("PReLU", rng, [("num_parameters", n), ("init", init)]), {"kinks": [0.0]}


def m_rrelu(rng, shape):
    r = rng.random()
    if r < 0.2:
        lo = hi = round(rng.uniform(-0.5, 0.9), 3)
    else:
        lo = round(rng.uniform(-0.6, 0.6), 3)
        hi = round(lo + rng.uniform(0.01, 0.8), 3)
    args = [("lower", maybe(rng, 0.8, repr(lo))), ("upper", maybe(rng, 0.8, repr(hi))),
            ("inplace", inplace_arg(rng))]
    return call("RReLU", rng, args), {"kinks": [0.0], "random": "rrelu"}


def m_softmax(name):
    def make(rng, shape):
        nd = len(shape)
        rng_dims = list(range(-max(nd, 1), max(nd, 1)))
        dim = rng.choice([None, "None"] + [repr(d) for d in rng_dims] * 2)
        return call(name, rng, [("dim", dim)]), {"kinks": [0.0]}
    return make


def m_dropout(name):
    def make(rng, shape):
        p = rng.choice([None, "0.5", "0.0", "1.0", "0", "1", num(rng, 0.05, 0.95), num(rng, 0.05, 0.95)])
        return call(name, rng, [("p", p), ("inplace", inplace_arg(rng))]), {"kinks": [0.0], "random": "dropout"}
    return make


MAKERS = [
    m_simple("Sigmoid"), m_simple("Tanh"), m_inplace("ReLU", [0.0]), m_leaky, m_prelu, m_rrelu,
    m_softmax("Softmax"), m_softmax("LogSoftmax"), m_elu, m_gelu, m_inplace("SiLU", [0.0]),
    m_inplace("ReLU6", [0.0, 6.0]), m_hardtanh, m_inplace("Hardsigmoid", [-3.0, 3.0]),
    # Not x = 3 for Hardswish: PyTorch 1.13's gradient there is 1.5 in its scalar
    # loop and 1.0 in its vectorized one (issue 87778); cnn gives 1.5.
    m_inplace("Hardswish", [-3.0, 0.0]), m_softplus, m_dropout("Dropout"), m_dropout("Dropout2d"),
]

# Configurations PyTorch rejects (when it does: the test asks PyTorch).
INVALID = [
    "Dropout(p=1.5)", "Dropout(-0.2)", "Dropout2d(p=2)", "Dropout('a')", "Dropout(None)",
    "Dropout2d(0.5, True, 1)", "Hardtanh(1, 0.5)", "Hardtanh(0.5, 0.5)", "Hardtanh(min_value=2)",
    "Hardtanh(max_value=-3)", "Hardtanh(min_val=None)", "Hardtanh('a')", "RReLU(0.5, 0.1)",
    "RReLU(upper=0.01)", "GELU('foo')", "GELU(approximate=None)", "GELU(1)", "Softmax(1.0)",
    "Softmax(True)", "Softmax('a')", "LogSoftmax(dim=(1,))", "Softmax(dim=7)", "LogSoftmax(-7)",
    "PReLU(-1)", "PReLU(1.5)", "PReLU(True)", "PReLU(init='a')", "PReLU(7)", "PReLU(device='cuda')",
    "LeakyReLU('a')", "ELU(alpha='x')", "Softplus(beta='a')", "Softplus(threshold=None)",
    "ReLU(foo=1)", "Sigmoid(1)", "Tanh(inplace=True)", "ReLU(True, 1)", "ReLU(inplace=foo)",
    "SiLU(inplace=True, inplace=False)", "Hardswish(1, 2)", "LeakyReLU(-0.2, inplace=True)",
    "ELU(alpha=-1.0, inplace=True)", "RReLU(-0.5, -0.1, inplace=True)", "NoSuchActivation()",
]


def random_shape(rng):
    nd = rng.choices([0, 1, 2, 3, 4, 5], weights=[5, 12, 25, 20, 25, 13])[0]
    while True:
        shape = [rng.randint(1, 5) for _ in range(nd)]
        if int(np.prod(shape)) <= 300:
            break
    if nd and rng.random() < 0.04:
        shape[rng.randrange(nd)] = 0
    return shape


def random_input(rng, shape, kinks, chain):
    """Standard normal values at a random scale, a quarter of them put exactly
    on the module's kinks. Not for chains: there a value float32 rounds onto
    a kink of the next module (Tanh(9.1) is 1.0f, Hardtanh's bound) takes
    another branch than PyTorch's float64, so chains get unit scale only."""
    if chain:
        return torch.randn(shape).float()
    scale = rng.choice([1.0, 1.0, 3.0, 30.0])
    x = torch.randn(shape) * scale
    if kinks and rng.random() < 0.6 and x.numel() > 0:
        flat = x.view(-1)
        for i in range(flat.numel()):
            if rng.random() < 0.25:
                flat[i] = rng.choice(kinks)
    return x.float()


def random_config(rng):
    """(model text, per-module info, input shape, training)."""
    shape = random_shape(rng)
    train = rng.random() < 0.35
    if rng.random() < 0.15:
        bad = rng.choice(INVALID)
        return bad + "\n", [{"kinks": [0.0]}], shape, train
    n_mod = 1 if rng.random() < 0.85 else rng.randint(2, 3)
    texts, infos = [], []
    for i in range(n_mod):
        INPLACE["allowed"] = i == 0
        text, info = rng.choice(MAKERS)(rng, shape)
        texts.append(text)
        infos.append(info)
    if n_mod == 1 and "random" in infos[0]:
        train = rng.random() < 0.7  # the law of the draw is the part worth testing
    return "\n".join(texts) + "\n", infos, shape, train


def torch_module(text):
    return torch.nn.Sequential(*[eval("torch.nn." + ln) for ln in text.strip().splitlines()])


def draws(model, train, ndim):
    """Whether a training run draws random numbers (so only the law can be
    checked). Dropout2d cannot draw on fewer than 2 dims: PyTorch rejects it."""
    if not train:
        return False
    for m in model:
        if isinstance(m, torch.nn.RReLU) and m.lower < m.upper:
            return True
        if isinstance(m, torch.nn.Dropout2d) and ndim < 2:
            continue
        if isinstance(m, (torch.nn.Dropout, torch.nn.Dropout2d)) and 0 < m.p < 1:
            return True
    return False


def check_law(t, case, text, m, x32, rng):
    """One random layer in training through `cnn run --train`."""
    gy = (torch.rand(x32.shape) + 0.5).float().numpy()  # never 0: the gradient shows the factor
    seed = rng.randrange(1 << 30)
    r = common.run_cnn(text, {"input": x32.numpy()}, None, gy, train=True, seed=seed)
    what = "case %d: %s on %s (train, seed %d)" % (case, text.strip(), list(x32.shape), seed)
    if not t.ok(r.rc == 0, "%s: cnn failed (%d): %s" % (what, r.rc, r.stderr.strip()[:300])):
        return
    x = x32.numpy().astype(np.float64)
    y = r.output["output"].astype(np.float64)
    dx = r.grads["input"].astype(np.float64)
    factor = dx / gy
    if isinstance(m, torch.nn.RReLU):
        neg = x <= 0
        lo, hi = m.lower, m.upper
        eps = 1e-6 * max(abs(lo), abs(hi)) + 1e-12
        ok = np.all(y[~neg] == x[~neg]) and np.all(dx[~neg] == gy[~neg])
        ok = ok and np.all((factor[neg] >= lo - eps) & (factor[neg] <= hi + eps))
        ok = ok and np.all(np.abs(y[neg] - x[neg] * factor[neg]) <= 1e-6 * np.abs(x[neg]))
        t.ok(ok, "%s: RReLU's law is broken: slopes %s" % (what, factor[neg][:8]))
        random_part = int(neg.sum())
    else:
        scale = np.float32(1.0 / (1.0 - m.p))
        kept = factor != 0
        ok = np.all(np.abs(factor[kept] - scale) <= 1e-6 * scale)
        ok = ok and np.all(y[~kept] == 0) and np.all(
            y[kept] == (x32.numpy()[kept] * scale).astype(np.float64))
        if isinstance(m, torch.nn.Dropout2d) and x.ndim >= 2:
            blocks = kept.reshape(x.shape[0] * x.shape[1], -1)
            ok = ok and bool(np.all(blocks.all(axis=1) | (~blocks).all(axis=1)))
            random_part = blocks.shape[0]
        else:
            random_part = x.size
        t.ok(ok, "%s: %s's law is broken (scale %r): factors %s" % (what, type(m).__name__, scale,
                                                                       factor.ravel()[:8]))
    again = common.run_cnn(text, {"input": x32.numpy()}, None, gy, train=True, seed=seed)
    t.ok(again.rc == 0 and np.array_equal(again.output.get("output"), r.output["output"]),
         "%s: the same seed gave another draw" % what)
    if random_part >= 30 and (not isinstance(m, torch.nn.RReLU) or m.upper - m.lower > 0.05) and \
            (isinstance(m, torch.nn.RReLU) or 0.2 < m.p < 0.8):
        other = common.run_cnn(text, {"input": x32.numpy()}, None, gy, train=True, seed=seed + 1)
        t.ok(other.rc == 0 and not np.array_equal(other.output.get("output"), r.output["output"]),
             "%s: another seed gave the same draw" % what)


def torch_run(text, x32, train, weights):
    """PyTorch's float64 result, or the error it raises and at which stage."""
    try:
        m = torch_module(text).double()
    except Exception as e:  # noqa: BLE001 - any rejection counts
        return None, None, None, "construction", e
    m.train(train)
    if weights is not None:
        with torch.no_grad():
            for name, p in m.named_parameters():
                p.copy_(torch.from_numpy(weights[name]).double())
    for p in m.parameters():
        with torch.no_grad():
            p.copy_(p.float().double())
    x = x32.double().requires_grad_(True)
    try:
        y = m(x.clone())  # a non-leaf, so in-place modules are allowed
    except Exception as e:  # noqa: BLE001
        return m, x, None, "forward", e
    gy32 = torch.randn(y.shape).float()
    try:
        y.backward(gy32.double())
    except Exception as e:  # noqa: BLE001
        return m, x, (y, gy32), "backward", e
    return m, x, (y, gy32), None, None


def main():
    warnings.filterwarnings("ignore")
    seed = common.test_seed()
    rng = random.Random(seed)
    torch.manual_seed(seed)
    n_cases = int(os.environ.get("CNN_LIVE_CASES", "400"))
    t = common.Tally()
    compared = rejected = laws = empty = 0
    worst = 0.0
    for case in range(n_cases):
        text, infos, shape, train = random_config(rng)
        kinks = sorted({k for info in infos for k in info["kinks"]})
        x32 = random_input(rng, shape, kinks, text.count("\n") > 1)
        try:
            probe = torch_module(text)
        except Exception:  # noqa: BLE001
            probe = None
        is_empty = x32.numel() == 0
        if probe is not None and len(probe) == 1 and draws(probe, train, len(shape)) and not is_empty:
            check_law(t, case, text, probe[0], x32, rng)
            laws += 1
            continue
        if probe is not None and draws(probe, train, len(shape)):
            train = False  # chains are compared; their random layers are checked alone
        weights = None
        if probe is not None and any(True for _ in probe.parameters()) and rng.random() < 0.6:
            weights = {name: (torch.randn(p.shape) * 0.7).float().numpy()
                       for name, p in probe.named_parameters()}
        m, x, res, stage, err = torch_run(text, x32, train, weights)
        what = "case %d: %s on %s (%s)" % (case, text.strip().replace("\n", " | "), shape,
                                           "train" if train else "eval")
        if stage in ("construction", "forward"):
            r = common.run_cnn(text, {"input": x32.numpy()}, train=train)
            rejected += 1
            t.ok(r.rc == 1 and r.stderr.strip() != "" and "left behind" not in r.stderr,
                 "%s: PyTorch rejects it at %s (%s: %s) but cnn exited %d: %s"
                 % (what, stage, type(err).__name__, str(err).split("\n")[0][:120], r.rc,
                    r.stderr.strip()[:300]))
            continue
        y, gy32 = res
        if is_empty:
            # `cnn run` plans no gradient buffer of 0 bytes, so only the forward.
            r = common.run_cnn(text, {"input": x32.numpy()}, weights, train=train)
            empty += 1
            t.ok(r.rc == 0 and np.shape(r.output.get("output")) == tuple(y.shape),
                 "%s: empty input: cnn exited %d, output %s, PyTorch %s: %s"
                 % (what, r.rc, np.shape(r.output.get("output")), tuple(y.shape), r.stderr.strip()[:300]))
            continue
        if stage == "backward":
            # Forward works in both; the backward must fail in both.
            r = common.run_cnn(text, {"input": x32.numpy()}, weights, train=train)
            t.ok(r.rc == 0 and common.max_rel_err(r.output.get("output"), y.detach().numpy()) <= TOL,
                 "%s: forward alone must work as in PyTorch: %d %s" % (what, r.rc, r.stderr.strip()[:300]))
            r = common.run_cnn(text, {"input": x32.numpy()}, weights, gy32.numpy(), train=train)
            rejected += 1
            t.ok(r.rc == 1 and r.stderr.strip() != "" and "left behind" not in r.stderr,
                 "%s: PyTorch's backward fails (%s) but cnn exited %d: %s"
                 % (what, str(err).split("\n")[0][:120], r.rc, r.stderr.strip()[:300]))
            continue
        r = common.run_cnn(text, {"input": x32.numpy()}, weights, gy32.numpy(), train=train,
                           seed=rng.randrange(1 << 30))
        compared += 1
        if not t.ok(r.rc == 0, "%s: cnn failed (%d): %s" % (what, r.rc, r.stderr.strip()[:400])):
            continue
        pairs = [("output", r.output.get("output"), y.detach().numpy()),
                 ("grad input", r.grads.get("input"), x.grad.numpy())]
        for pname, p in m.named_parameters():
            pairs.append(("grad " + pname, r.grads.get(pname), p.grad.numpy()))
        for label, got, want in pairs:
            if got is None:
                t.ok(False, "%s: cnn wrote no %s" % (what, label))
                continue
            e = common.max_rel_err(got, want)
            worst = max(worst, e)
            t.ok(e <= TOL, "%s: %s differs, relative error %.3g (shape %s vs %s)"
                 % (what, label, e, np.shape(got), np.shape(want)))
    print("%d configurations compared with PyTorch (worst relative error %.3g), %d laws of random "
          "layers checked, %d rejected by both, %d empty inputs (forward only)"
          % (compared, worst, laws, rejected, empty))
    t.finish()


if __name__ == "__main__":
    main()
