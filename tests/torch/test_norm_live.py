"""Live randomized comparison of the normalisation family with the installed
PyTorch: BatchNorm1d/2d/3d, InstanceNorm1d/2d/3d, GroupNorm and LayerNorm
with random arguments (positional or keyword, every option), random shapes
(unbatched InstanceNorm inputs, channel counts PyTorch does not check,
inputs with a large mean), training and eval mode, random weights and
running statistics (and num_batches_tracked, for momentum=None).

For every configuration PyTorch accepts: output, input gradient, every
parameter gradient and every buffer after the run (--state-out) against
PyTorch's float64 result from the same float32 values. Configurations
PyTorch rejects (a float32 forward in the same mode raises) must make cnn
exit with status 1 and a message. Empty inputs are run too (PyTorch accepts
some that fail with data): status and buffers are compared.

LayerNorm(bias=False) is not in torch 1.13: its oracle is F.layer_norm with
the module's weight and bias None, which is what the newer module does."""
import copy
import os
import random
import time
import warnings

import numpy as np
import torch

import common

TOL = 1e-5


class Raw(str):
    """Text written as is (torch.float32), not repr'd."""


def call(name, args, kw):
    parts = [a if isinstance(a, Raw) else repr(a) for a in args]
    parts += ["%s=%s" % (k, v if isinstance(v, Raw) else repr(v)) for k, v in kw.items()]
    return "%s(%s)" % (name, ", ".join(str(p) for p in parts))


def flag(rng, value):
    """A flag as PyTorch would take it: a bool, sometimes 0/1 or None."""
    r = rng.random()
    if r < 0.1:
        return int(value)
    if r < 0.15 and not value:
        return None
    return value


def spatial(rng, n, lo=1, hi=5):
    return [rng.randint(lo, hi) for _ in range(n)]


def positional(rng, names, kw, max_pos):
    """Moves a leading run of kw's entries, in signature order, to positional."""
    args = []
    if rng.random() < 0.3:
        for name in names[:max_pos]:
            if name not in kw:
                break
            args.append(kw.pop(name))
    return args


NORM_SIG = ["eps", "momentum", "affine", "track_running_stats"]


def config_norm_base(rng, kind, nsp, bad):
    """BatchNorm / InstanceNorm."""
    batch = kind == "BatchNorm"
    name = "%s%dd" % (kind, nsp)
    c = rng.randint(1, 5)
    kw = {}
    if rng.random() < 0.4:
        kw["eps"] = rng.choice([1e-3, 0.1, 1e-5, 2] + ([0.0] if batch else []))
    if rng.random() < 0.5:
        kw["momentum"] = rng.choice([0.3, 1.0, 0.0, 0.05] + ([None, None] if batch else []))
    affine = rng.random() < (0.7 if batch else 0.5)
    track = rng.random() < (0.7 if batch else 0.5)
    if affine != batch or rng.random() < 0.3:
        kw["affine"] = flag(rng, affine)
    if track != batch or rng.random() < 0.3:
        kw["track_running_stats"] = flag(rng, track)
    if rng.random() < 0.05:
        kw["device"] = "cpu"
    if rng.random() < 0.05:
        kw["dtype"] = Raw("torch.float32")
    n = rng.randint(1, 4)
    if batch:
        if nsp == 1 and rng.random() < 0.4:
            shape = [n, c]
        else:
            shape = [n, c] + spatial(rng, nsp)
        if (shape[0] * int(np.prod(shape[2:])) == 1 and rng.random() < 0.8
                and bad is None):
            shape[0] = 2
    else:
        shape = ([n] if rng.random() < 0.8 else []) + [c] + spatial(rng, nsp, 1, 5)
        if int(np.prod(shape[-nsp:])) == 1 and bad is None:
            shape[-1] = 2
    nf = c
    if bad == "channels":
        nf = c + rng.choice([-1, 1]) if c > 1 else 2
    elif bad == "ndim":
        shape = shape + [2] if rng.random() < 0.5 else shape[:-1]
    elif bad == "one":
        shape = [1, c] + [1] * (len(shape) - 2) if batch else shape[:-nsp] + [1] * nsp
    elif bad == "neg":
        nf = -1
    elif bad == "mom_none" and not batch:
        kw["momentum"] = None
    elif bad == "eps_none":
        kw["eps"] = None
    elif bad == "dtype":
        kw["dtype"] = Raw("torch.float64")
    elif bad == "unknown":
        kw["momentun"] = 0.1
    elif bad == "empty":
        shape[rng.randrange(len(shape))] = 0
    args = [nf] + positional(rng, NORM_SIG, kw, 4)
    text = call(name, args, kw)
    return text, text, None, shape


def config_group(rng, bad):
    g = rng.randint(1, 4)
    c = g * rng.randint(1, 3)
    kw = {}
    if rng.random() < 0.4:
        kw["eps"] = rng.choice([1e-3, 0.1, 1e-5])
    affine = rng.random() < 0.7
    if not affine or rng.random() < 0.3:
        kw["affine"] = flag(rng, affine)
    shape = [rng.randint(1, 3), c] + spatial(rng, rng.randint(0, 3), 1, 4)
    channels = c
    if bad == "channels":
        channels = c + g if rng.random() < 0.5 else c + 1
    elif bad == "div":
        channels = c + 1 if g > 1 else c
        g = g if g > 1 else 2
        channels = channels if channels % g else channels + 1
    elif bad == "groups":
        g = rng.choice([0, -1, -c])
    elif bad == "ndim":
        shape = [c]
    elif bad == "one":
        shape = [1, g] + [1] * rng.randint(0, 2)
        channels = g
    elif bad == "neg":
        channels = -g
    elif bad == "unknown":
        kw["num_group"] = 2
    elif bad == "empty":
        shape[rng.randrange(len(shape))] = 0
    args = [g, channels] + positional(rng, ["eps", "affine"], kw, 2)
    text = call("GroupNorm", args, kw)
    return text, text, None, shape


def config_layer(rng, bad):
    k = rng.randint(1, 3)
    dims = spatial(rng, k, 1, 5)
    if k == 1 and dims[0] == 1 and rng.random() < 0.7:
        dims[0] = 3
    lead = spatial(rng, rng.randint(0, 2), 1, 4)
    shape = lead + dims
    form = rng.random()
    if k == 1 and form < 0.4:
        ns = dims[0]
    elif form < 0.7:
        ns = list(dims)
    else:
        ns = tuple(dims)
    kw = {}
    if rng.random() < 0.4:
        kw["eps"] = rng.choice([1e-3, 0.1, 1e-5])
    affine = rng.random() < 0.7
    if not affine or rng.random() < 0.3:
        kw["elementwise_affine"] = flag(rng, affine)
    bias = rng.random() < 0.65
    if not bias or rng.random() < 0.2:
        kw["bias"] = flag(rng, bias)
    if bad == "shape":
        i = rng.randrange(len(shape))
        shape[i] += 1
        if i < len(lead):
            bad = None  # leading dims are free: PyTorch accepts it
    elif bad == "ndim":
        shape = dims[1:] if k > 1 else []
        if not shape:
            ns = [dims[0], 2]
            shape = [dims[0]]
    elif bad == "emptyshape":
        ns = rng.choice([[], ()])
    elif bad == "neg":
        ns = [-1] + list(dims[1:])
    elif bad == "eps_none":
        kw["eps"] = None
    elif bad == "empty":
        shape[rng.randrange(len(shape))] = 0
    args = [ns] + positional(rng, ["eps", "elementwise_affine", "bias"], kw, 3)
    text = call("LayerNorm", args, kw)
    # torch 1.13 has no bias argument: build without it, then drop the bias.
    targs, tkw = list(args), dict(kw)
    has_bias = True
    if len(targs) > 3:
        has_bias = bool(targs.pop(3))
    if "bias" in tkw:
        has_bias = bool(tkw.pop("bias"))
    return text, call("LayerNorm", targs, tkw), has_bias, shape


BADS = {
    "BatchNorm": ["channels", "ndim", "one", "neg", "eps_none", "dtype", "unknown", "empty"],
    "InstanceNorm": ["channels", "ndim", "one", "neg", "mom_none", "eps_none", "dtype", "unknown",
                     "empty"],
    "GroupNorm": ["channels", "div", "groups", "ndim", "one", "neg", "unknown", "empty"],
    "LayerNorm": ["shape", "ndim", "emptyshape", "neg", "eps_none", "empty"],
}


def random_config(rng):
    kind = rng.choice(["BatchNorm", "BatchNorm", "InstanceNorm", "GroupNorm", "LayerNorm"])
    bad = rng.choice(BADS[kind]) if rng.random() < 0.25 else None
    if kind in ("BatchNorm", "InstanceNorm"):
        text, ttext, has_bias, shape = config_norm_base(rng, kind, rng.randint(1, 3), bad)
    elif kind == "GroupNorm":
        text, ttext, has_bias, shape = config_group(rng, bad)
    else:
        text, ttext, has_bias, shape = config_layer(rng, bad)
    return text, ttext, has_bias, shape, rng.random() < 0.5


def build_torch(ttext, has_bias):
    m = eval("torch.nn." + ttext)
    if has_bias is False and getattr(m, "bias", None) is not None:
        m.bias = None
    return m


def randomise(m, rng):
    with torch.no_grad():
        for name, p in m.state_dict().items():
            if name == "num_batches_tracked":
                p.fill_(rng.randint(0, 5))
            elif name == "running_var":
                p.copy_((torch.rand(p.shape) + 0.3).float())
            elif name == "running_mean":
                p.copy_((torch.randn(p.shape) * 0.5).float())
            else:
                p.copy_((torch.randn(p.shape) * 0.7 + (1 if name == "weight" else 0)).float())


def rel_err(got, want):
    """max_rel_err, with NaN matching NaN (PyTorch's NaN running statistics
    after an empty batch)."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return float("inf")
    both = np.isnan(got) & np.isnan(want)
    return common.max_rel_err(np.where(both, 0, got), np.where(both, 0, want))


def first_line(e):
    s = str(e).splitlines()
    return "%s: %s" % (type(e).__name__, s[0] if s else "")


def main():
    warnings.filterwarnings("ignore")
    seed = common.test_seed()
    rng = random.Random(seed)
    torch.manual_seed(seed)
    n_cases = int(os.environ.get("CNN_LIVE_CASES", "400"))
    verbose = os.environ.get("CNN_LIVE_VERBOSE")
    t = common.Tally()
    checked = rejected = empty = widened = 0
    worst = 0.0
    start = time.time()
    for case in range(n_cases):
        text, ttext, has_bias, shape, train = random_config(rng)
        mode = "train" if train else "eval"
        where = "case %d: %s on %s (%s)" % (case, text, shape, mode)
        x32 = (torch.randn(*shape) * rng.choice([1, 1, 1, 0.01, 3])
               + rng.choice([0, 0, 0, 40.0, -5.0])).float()
        torch_err = None
        try:
            m = build_torch(ttext, has_bias)
            randomise(m, rng)
            state0 = {k: v.clone() for k, v in m.state_dict().items()}
            probe = copy.deepcopy(m).train(train)
            probe(x32.clone())
        except Exception as e:  # PyTorch rejects this configuration
            torch_err = first_line(e)
        if verbose:
            print("%s: %s" % (where, torch_err or "accepted"))
        if torch_err is not None:
            r = common.run_cnn(text + "\n", {"input": x32.numpy()}, train=train)
            rejected += 1
            t.ok(r.rc == 1 and r.stderr.strip() != "" and "left behind" not in r.stderr,
                 "%s: PyTorch rejects it (%s) but cnn exited %d: %s"
                 % (where, torch_err, r.rc, r.stderr.strip()[:300]))
            continue
        weights = {"0." + k: (v.float().numpy() if v.dtype.is_floating_point else v.numpy())
                   for k, v in state0.items()}
        m = m.double().train(train)
        x = x32.double().requires_grad_(True)
        y = m(x)
        if y.numel() == 0:
            r = common.run_cnn(text + "\n", {"input": x32.numpy()}, weights, train=train,
                               state_out=True)
            empty += 1
            if t.ok(r.rc == 0, "%s: empty input, PyTorch accepts it but cnn failed (%d): %s"
                    % (where, r.rc, r.stderr.strip()[:300])):
                for k, v in m.state_dict().items():
                    got = r.state.get("0." + k)
                    t.ok(got is not None and rel_err(got, v.numpy()) <= TOL,
                         "%s: empty input: state %s is %s, PyTorch %s" % (where, k, got, v.numpy()))
            continue
        gy32 = torch.randn(*y.shape).float()
        y.backward(gy32.double())
        # PyTorch's own float32 error on the same case: where the problem is
        # ill-conditioned (eps 0 and two values per channel, say), float32
        # cannot do better, and the tolerance grows to 4x PyTorch's error.
        m32 = build_torch(ttext, has_bias)
        m32.load_state_dict(state0)
        m32.train(train)
        x32g = x32.clone().requires_grad_(True)
        y32 = m32(x32g)
        y32.backward(gy32)
        ref32 = {"output": y32.detach().double().numpy(), "grad input": x32g.grad.double().numpy()}
        for pname, p in m32.named_parameters():
            ref32["grad " + pname] = p.grad.double().numpy()
        r = common.run_cnn(text + "\n", {"input": x32.numpy()}, weights, gy32.numpy(),
                           train=train, state_out=True)
        checked += 1
        if not t.ok(r.rc == 0, "%s: cnn failed (%d): %s" % (where, r.rc, r.stderr.strip()[:400])):
            continue
        pairs = [("output", r.output.get("output"), y.detach().numpy()),
                 ("grad input", r.grads.get("input"), x.grad.numpy())]
        for pname, p in m.named_parameters():
            pairs.append(("grad " + pname, r.grads.get("0." + pname), p.grad.numpy()))
        for k, v in m.state_dict().items():
            pairs.append(("state " + k, r.state.get("0." + k), v.numpy()))
        extra = set(r.grads) - {"input"} - {"0." + k for k, _ in m.named_parameters()}
        extra |= set(r.state) - {"0." + k for k in m.state_dict()}
        t.ok(not extra, "%s: cnn has parameters or buffers PyTorch lacks: %s" % (where, sorted(extra)))
        for what, got, want in pairs:
            if got is None:
                t.ok(False, "%s: cnn wrote no %s" % (where, what))
                continue
            if want.dtype == np.int64:
                t.ok(got.shape == want.shape and np.array_equal(got, want),
                     "%s: %s is %s, PyTorch %s" % (where, what, got, want))
                continue
            e = rel_err(got, want)
            tol = TOL
            if what in ref32:
                tol = max(TOL, 4 * rel_err(ref32[what], want))
                widened += tol > TOL
            worst = max(worst, e if tol == TOL else 0.0)
            t.ok(e <= tol, "%s: %s differs, relative error %.3g, tolerance %.3g (shape %s vs %s)"
                 % (where, what, e, tol, np.shape(got), np.shape(want)))
    print("%d configurations compared with PyTorch (worst relative error %.3g), %d empty inputs, "
          "%d rejected by both, in %.1f s" % (checked, worst, empty, rejected, time.time() - start))
    print("%d comparisons ill-conditioned (PyTorch's float32 result off by more than 2.5e-6): "
          "tolerance 4x PyTorch's float32 error there" % widened)
    t.finish()


if __name__ == "__main__":
    main()
