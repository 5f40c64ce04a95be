"""Live randomized comparison of small Sequential models that mix the layer
families with convolutions (convolution, batch/group/instance/layer norm,
PReLU and the other activations, max/average pooling, flatten, linear,
batch norm over features) with the same nn.Sequential in PyTorch: output,
input gradient, every parameter gradient, and in training mode the running
statistics afterwards, against PyTorch's float64 result."""
import os
import random
import warnings

import numpy as np
import torch

import common

TOL = 1e-5
ACTS = ["ReLU()", "LeakyReLU(0.1)", "Tanh()", "Sigmoid()", "ELU()", "GELU()", "SiLU()",
        "Hardswish()", "ReLU6()", "Softplus()"]


def random_model(rng):
    """(model text, input shape with batch)."""
    n = rng.randint(2, 4)
    c, h, w = rng.randint(1, 4), rng.randint(6, 12), rng.randint(6, 12)
    shape = (n, c, h, w)
    lines = []
    for _ in range(rng.randint(2, 6)):
        r = rng.random()
        if r < 0.3:
            co = rng.randint(1, 6)
            k = rng.choice([1, 3, 3, 5])
            p = rng.randint(0, k // 2)
            s = rng.choice([1, 1, 2])
            if h + 2 * p < k or w + 2 * p < k:
                continue
            lines.append("Conv2d(%d, %d, %d, stride=%d, padding=%d%s)"
                         % (c, co, k, s, p, ", bias=False" if rng.random() < 0.3 else ""))
            c, h, w = co, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        elif r < 0.42:
            lines.append("BatchNorm2d(%d%s)" % (c, rng.choice(["", ", momentum=0.3", ", affine=False",
                                                               ", eps=1e-3"])))
        elif r < 0.48:
            g = rng.choice([d for d in range(1, c + 1) if c % d == 0])
            lines.append("GroupNorm(%d, %d)" % (g, c))
        elif r < 0.52:
            lines.append("InstanceNorm2d(%d, affine=True)" % c)
        elif r < 0.56:
            lines.append("LayerNorm([%d, %d, %d])" % (c, h, w))
        elif r < 0.66:
            lines.append(rng.choice(["PReLU()", "PReLU(%d)" % c, "PReLU(%d, init=0.1)" % c]))
        elif r < 0.8:
            lines.append(rng.choice(ACTS))
        elif r < 0.9:
            if h < 2 or w < 2:
                continue
            lines.append("MaxPool2d(2)")
            h, w = h // 2, w // 2
        else:
            if h < 2 or w < 2:
                continue
            ceil = rng.random() < 0.3
            lines.append("AvgPool2d(2%s)" % (", ceil_mode=True" if ceil else ""))
            h, w = ((h + 1) // 2, (w + 1) // 2) if ceil else (h // 2, w // 2)
    if rng.random() < 0.7:
        f = rng.randint(2, 8)
        lines += ["Flatten()", "Linear(%d, %d)" % (c * h * w, f)]
        if rng.random() < 0.4:
            lines.append("BatchNorm1d(%d)" % f)
        if rng.random() < 0.5:
            lines.append(rng.choice(ACTS + ["PReLU()"]))
        lines.append("Linear(%d, %d)" % (f, rng.randint(1, 5)))
    if not lines:
        lines.append("ReLU()")
    return "\n".join(lines) + "\n", shape


def main():
    warnings.filterwarnings("ignore")
    seed = common.test_seed()
    rng = random.Random(seed)
    torch.manual_seed(seed)
    n_cases = int(os.environ.get("CNN_LIVE_CASES", "120"))
    t = common.Tally()
    worst = 0.0
    widened = rejected = 0
    compared = {"eval": 0, "train": 0}
    for case in range(n_cases):
        text, shape = random_model(rng)
        train = rng.random() < 0.5
        mode = "train" if train else "eval"
        what = "case %d (%s): %s on %s" % (case, mode, text.strip().replace("\n", " | "), shape)
        m = torch.nn.Sequential(*[eval("torch.nn." + ln) for ln in text.strip().splitlines()])
        with torch.no_grad():
            for k, b in m.named_buffers():
                if k.endswith("running_mean"):
                    b.copy_(torch.randn(b.shape) * 0.2)
                elif k.endswith("running_var"):
                    b.copy_(torch.rand(b.shape) + 0.5)
            # norm scales and shifts and PReLU slopes start at constants;
            # LayerNorm's are shaped like the normalized block. A LayerNorm
            # over one element outputs its shift exactly, where PyTorch's
            # float64 result is the shift plus rounding noise of either sign:
            # at the default shift 0 a ReLU or PReLU after it would compare
            # the kink's two sides.
            ln = {k for k, mod in m.named_modules() if isinstance(mod, torch.nn.LayerNorm)}
            for k, p in m.named_parameters():
                if p.dim() != 1 and k.rsplit(".", 1)[0] not in ln:
                    continue
                if k.endswith("weight"):
                    p.copy_(torch.rand(p.shape) + 0.5)
                elif k.endswith("bias"):
                    p.copy_(torch.randn(p.shape) * 0.1)
            for p in m.parameters():
                p.copy_(p.float())
        # copies: .numpy() of an integer buffer shares its memory, and the
        # forward below would count num_batches_tracked into the weights
        weights = {k: (v.float() if v.is_floating_point() else v).numpy().copy() for k, v in m.state_dict().items()}
        # PyTorch's own float32 run: its error bounds what float32 can do on
        # an ill-conditioned case (batch norm over 2 or 3 samples, say)
        m32 = torch.nn.Sequential(*[eval("torch.nn." + ln) for ln in text.strip().splitlines()])
        m32.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in weights.items()})
        m32.train(train)
        m = m.double().train(train)
        x32 = torch.randn(*shape).float()
        x = x32.double().requires_grad_(True)
        try:
            y = m(x)
        except (ValueError, RuntimeError) as err:  # e.g. instance norm of 1x1 maps in training
            r = common.run_cnn(text, {"input": x32.numpy()}, weights, train=train)
            rejected += 1
            t.ok(r.rc == 1 and r.stderr.strip() != "", "%s: PyTorch rejects it (%s) but cnn exited %d: %s"
                 % (what, str(err).splitlines()[0][:120], r.rc, r.stderr.strip()[:300]))
            continue
        gy32 = torch.randn(*y.shape).float()
        y.backward(gy32.double())
        x32g = x32.clone().requires_grad_(True)
        y32 = m32(x32g)
        y32.backward(gy32)
        ref32 = {"output": y32.detach().double().numpy(), "grad input": x32g.grad.double().numpy()}
        for k, p in m32.named_parameters():
            ref32["grad " + k] = p.grad.double().numpy()
        for k, b in m32.state_dict().items():
            if b.is_floating_point():
                ref32["state " + k] = b.double().numpy()
        # A second float32 run, from an input and parameters moved by about
        # one ulp: another sample of float32 rounding (where a result cancels
        # to about 0, as the gradient through a batch norm of identical
        # samples, PyTorch's run above may land on 0 by luck), and of how far
        # rounding anywhere can move each result.
        mp = torch.nn.Sequential(*[eval("torch.nn." + ln) for ln in text.strip().splitlines()])
        mp.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in weights.items()})
        mp.train(train)
        with torch.no_grad():
            for p in mp.parameters():
                p.mul_(1 + 2.0 ** -23 * (2 * torch.rand(p.shape) - 1))
        xp = (x32 * (1 + 2.0 ** -23 * (2 * torch.rand(x32.shape) - 1))).requires_grad_(True)
        yp = mp(xp)
        yp.backward(gy32)
        refp = {"output": yp.detach().double().numpy(), "grad input": xp.grad.double().numpy()}
        for k, p in mp.named_parameters():
            refp["grad " + k] = p.grad.double().numpy()
        for k, b in mp.state_dict().items():
            if b.is_floating_point():
                refp["state " + k] = b.double().numpy()
        r = common.run_cnn(text, {"input": x32.numpy()}, weights, gy32.numpy(), train=train, state_out=True,
                           threads=rng.choice([1, 2]))
        if not t.ok(r.rc == 0, "%s: cnn failed (%d): %s" % (what, r.rc, r.stderr.strip()[:400])):
            continue
        compared[mode] += 1
        pairs = [("output", r.output.get("output"), y.detach().numpy()),
                 ("grad input", r.grads.get("input"), x.grad.numpy())]
        for k, p in m.named_parameters():
            pairs.append(("grad " + k, r.grads.get(k), p.grad.numpy()))
        for k, b in m.state_dict().items():
            if b.is_floating_point():
                pairs.append(("state " + k, r.state.get(k), b.numpy()))
            else:
                got = r.state.get(k)
                t.ok(got is not None and np.array_equal(got, b.numpy()), "%s: %s is %s, PyTorch %s"
                     % (what, k, got, b.numpy()))
        for name, got, want in pairs:
            e = common.max_rel_err(got, want) if got is not None else float("inf")
            # 16x: with two samples of the spread, cnn measured 8.4x the
            # larger on a batch norm of 3 samples (seed 5013, case 50)
            tol = max(TOL, 16 * common.max_rel_err(ref32[name], want), 16 * common.max_rel_err(refp[name], want))
            widened += tol > TOL
            worst = max(worst, e if tol == TOL else 0.0)
            t.ok(e <= tol, "%s: %s differs, relative error %.3g (tolerance %.3g)" % (what, name, e, tol))
    print("%d mixed Sequential models compared with PyTorch (%d in eval mode, %d in training mode; "
          "worst relative error %.3g)" % (sum(compared.values()), compared["eval"], compared["train"], worst))
    print("%d models rejected by both" % rejected)
    print("%d comparisons ill-conditioned (PyTorch's float32 result, or its float32 result from an input "
          "and parameters moved by an ulp, off by more than 6.25e-7): tolerance 16x that there" % widened)
    t.finish()


if __name__ == "__main__":
    main()
