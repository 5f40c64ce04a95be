"""The model files shipped in models/ against PyTorch: each is built in
PyTorch from the same text (graphmodel.py), given random weights and random
batch-norm running statistics, and compared in eval mode (output, input
gradient, every parameter gradient) and, for models without dropout, in
train mode too (batch statistics and the updated running statistics).
PyTorch's float64 result is the oracle; where PyTorch's own float32 runs
(from the same input and weights, and from ones moved by about an ulp) land
far from it, the case is ill-conditioned and the tolerance is 8x their
distance there. An input that puts a ReLU's input (in float64) or the gap
between a max-pooling window's two largest values within KINK_ERR times
PyTorch's float32 error on that tensor (and at least KINK of its largest
magnitude) is drawn again: any float32 run, PyTorch's included, may land on
the other side of such a kink, and the gradients then differ by far more
than rounding (seed 1169055610: a ReLU input of 4.2e-8 gave 3.8e-4 in
resnet_small's eval gradients; seed 12855456: one of -1.1e-6 behind seven
convolutions gave 1e-2 in its train-mode gradients). After 20 draws the one
farthest from a kink is used."""
import glob
import os
import random
import warnings

import numpy as np
import torch

import common
import graphmodel

TOL = 1e-5
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


NUDGED_RUNS = 3
KINK = 1e-7
KINK_ERR = 2


def kink_inputs(m, x, is_graph):
    """The inputs of every ReLU and of every MaxPool2d (dilation 1, no ceil
    mode) in the order the forward of x meets them, as float64 arrays. The
    model's state (batch-norm running statistics) is left as it was."""
    state = {k: v.clone() for k, v in m.state_dict().items()}
    seen = []

    def hook(mod, inp, out):
        seen.append((mod, inp[0].detach().double().clone()))

    hooks = []
    for mod in m.modules():
        kind = type(mod).__name__
        if kind == "ReLU" or (kind == "MaxPool2d" and not mod.ceil_mode and mod.dilation in (1, (1, 1))):
            hooks.append(mod.register_forward_hook(hook))
    with torch.no_grad():
        m(input=x) if is_graph else m(x)
    for h in hooks:
        h.remove()
    m.load_state_dict(state)
    return seen


def kink_distance(m, m32, x32, is_graph):
    """How close the float64 forward of x32 comes to a kink, in units of the
    float32 forward's own error on the same tensor: the smallest ReLU input
    magnitude, or the smallest positive gap between a max-pooling window's
    two largest values (where the largest is positive), divided by
    KINK_ERR x the largest difference between PyTorch's float32 and float64
    values of that tensor, or by KINK x the tensor's largest magnitude if
    that is larger. Below 1, a float32 run (cnn's or PyTorch's) may land on
    the other side of the kink: seed 12855456 put a ReLU input of -1.1e-6
    (1.8e-7 of its tensor's largest magnitude, behind seven convolutions and
    batch norms) where PyTorch's float32 error was 3.2e-6."""
    ins64 = kink_inputs(m, x32.double(), is_graph)
    ins32 = kink_inputs(m32, x32, is_graph)
    worst = float("inf")
    for (mod, v), (_, v32) in zip(ins64, ins32):
        scale = max(KINK * float(v.abs().max()), KINK_ERR * float((v32 - v).abs().max()), 1e-300)
        if type(mod).__name__ == "ReLU":
            worst = min(worst, float(v.abs().min()) / scale)
            continue
        k, s, p = mod.kernel_size, mod.stride, mod.padding
        cols = torch.nn.functional.unfold(v.reshape(-1, 1, *v.shape[-2:]), k, padding=p, stride=s)
        if cols.shape[1] < 2:
            continue
        top = cols.topk(2, dim=1).values
        gap = top[:, 0] - top[:, 1]
        gap = gap[(gap > 0) & (top[:, 0] > 0)]
        if gap.numel():
            worst = min(worst, float(gap.min()) / scale)
    return worst if worst != float("inf") else 1.0


def float32_runs(text, weights, x32, gy32, train, is_graph):
    """PyTorch's float32 results: one from the same input and weights, and
    NUDGED_RUNS from an input and weights each moved by about an ulp, as
    dicts keyed like the comparisons. The torch random state is restored,
    so each seed keeps its cases."""
    state = torch.get_rng_state()
    runs = []
    for k in range(NUDGED_RUNS + 1):
        m, _, _ = graphmodel.build(text)
        m.load_state_dict({n: torch.from_numpy(v.copy()) for n, v in weights.items()})
        m.train(train)
        x = x32.clone()
        if k:
            with torch.no_grad():
                for p in m.parameters():
                    p.mul_(1 + 2.0 ** -23 * (2 * torch.rand(p.shape) - 1))
            x = x * (1 + 2.0 ** -23 * (2 * torch.rand(x.shape) - 1))
        x.requires_grad_(True)
        y = m(input=x) if is_graph else m(x)
        y.backward(gy32)
        run = {"output": y.detach().double().numpy(), "grad input": x.grad.double().numpy()}
        for n, p in m.named_parameters():
            run["grad " + n] = p.grad.double().numpy()
        for n, b in m.named_buffers():
            if "running" in n:
                run["state " + n] = b.double().numpy()
        runs.append(run)
    torch.set_rng_state(state)
    return runs


def main():
    warnings.filterwarnings("ignore")
    seed = common.test_seed()
    rng = random.Random(seed)
    torch.manual_seed(seed)
    t = common.Tally()
    files = sorted(glob.glob(os.path.join(ROOT, "models", "*.txt")))
    t.ok(len(files) >= 4, "expected the model files in models/, found %d" % len(files))
    worst = 0.0
    compared = widened = redrawn = 0
    for path in files:
        text = open(path).read()
        name = os.path.basename(path)
        m, _, is_graph = graphmodel.build(text)
        m = m.double()
        with torch.no_grad():
            for p in m.parameters():
                p.copy_(p.float().double())
            for k, b in m.named_buffers():
                if k.endswith("running_mean"):
                    b.copy_(torch.randn(b.shape).float().double() * 0.1)
                elif k.endswith("running_var"):
                    b.copy_(torch.rand(b.shape).float().double() + 0.5)
        has_dropout = any(type(mod).__name__.startswith("Dropout") for mod in m.modules())
        batch = rng.randint(2, 4)
        for train in ([False] if has_dropout else [False, True]):
            m.train(train)
            m.zero_grad()
            weights = {k: (v.float() if v.is_floating_point() else v).numpy().copy() for k, v in m.state_dict().items()}
            m32, _, _ = graphmodel.build(text)
            m32.load_state_dict({n: torch.from_numpy(v.copy()) for n, v in weights.items()})
            m32.train(train)
            best = None
            for _ in range(20):
                x32 = torch.randn(batch, 1, 28, 28).float()
                d = kink_distance(m, m32, x32, is_graph)
                if best is None or d > best[0]:
                    best = (d, x32)
                if d >= 1:
                    break
                redrawn += 1
            x32 = best[1]
            x = x32.double().requires_grad_(True)
            y = m(input=x) if is_graph else m(x)
            gy32 = torch.randn(*y.shape).float()
            y.backward(gy32.double())
            r = common.run_cnn(text, {"input": x32.numpy()}, weights, gy32.numpy(), train=train,
                               state_out=train, threads=2)
            refs = float32_runs(text, weights, x32, gy32, train, is_graph)
            mode = "train" if train else "eval"
            if not t.ok(r.rc == 0, "%s (%s): cnn failed (%d): %s" % (name, mode, r.rc, r.stderr.strip()[:400])):
                continue
            compared += 1
            pairs = [("output", r.output.get("output"), y.detach().numpy()),
                     ("grad input", r.grads.get("input"), x.grad.numpy())]
            for pname, p in m.named_parameters():
                pairs.append(("grad " + pname, r.grads.get(pname), p.grad.numpy()))
            if train:
                for k, b in m.named_buffers():
                    if "running" in k:
                        pairs.append(("state " + k, r.state.get(k), b.numpy()))
            for what, got, want in pairs:
                e = common.max_rel_err(got, want) if got is not None else float("inf")
                tol = max([TOL] + [8 * common.max_rel_err(ref[what], want) for ref in refs])
                widened += tol > TOL
                worst = max(worst, e if tol == TOL else 0.0)
                t.ok(e <= tol, "%s (%s): %s differs, relative error %.3g (tolerance %.3g)"
                     % (name, mode, what, e, tol))
    print("%d model files, %d runs compared with PyTorch (worst relative error %.3g where well-conditioned)"
          % (len(files), compared, worst))
    print("%d comparisons ill-conditioned (PyTorch's float32 results, from the same and from ulp-moved input "
          "and weights, off float64's by more than 1.25e-6): tolerance 8x that there" % widened)
    print("%d inputs drawn again: a ReLU input or a max-pooling gap within %gx PyTorch's float32 error "
          "(at least %g of the largest magnitude) of its tensor" % (redrawn, KINK_ERR, KINK))
    t.finish()


if __name__ == "__main__":
    main()
