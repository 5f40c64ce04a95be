"""Live randomized comparison of graph models with PyTorch: random graphs of
convolutions with branches joined by Concat and Add (values used several
times, shared inputs), Flatten and Linear heads; output, input gradient and
every parameter gradient against PyTorch's float64 result. Graphs that
PyTorch cannot run (concatenating mismatched sizes, a Linear whose
in_features does not match) must be rejected with status 1."""
import os
import random
import warnings

import numpy as np
import torch

import common
import graphmodel

TOL = 1e-5


def random_graph(rng, allow_invalid):
    C0 = rng.randint(1, 4)
    H, W = rng.randint(3, 7), rng.randint(3, 7)
    vals = [("input", (C0, H, W))]  # name, shape without batch
    lines = []
    bad = allow_invalid and rng.random() < 0.25
    n_nodes = rng.randint(2, 7)
    for i in range(n_nodes):
        name = "n%d" % i
        four_d = [v for v in vals if len(v[1]) == 3]
        r = rng.random()
        if r < 0.45 or len(four_d) < 2:
            src = rng.choice(four_d)
            c = src[1][0]
            co = rng.randint(1, 5)
            k = rng.choice([1, 3, 5])
            stride = 2 if (bad and rng.random() < 0.3) else 1
            groups = 1
            if rng.random() < 0.2 and c == co:
                groups = c
            pad = k // 2
            lines.append("%s = Conv2d(%d, %d, %d, padding=%d, stride=%d, groups=%d)(%s)"
                         % (name, c, co, k, pad, stride, groups, src[0]))
            h = (src[1][1] + 2 * pad - k) // stride + 1
            w = (src[1][2] + 2 * pad - k) // stride + 1
            vals.append((name, (co, h, w)))
        elif r < 0.75:
            k = rng.randint(2, 3)
            picks = [rng.choice(four_d) for _ in range(k)]
            if not bad:
                base = picks[0][1]
                picks = [p for p in four_d if p[1][1:] == base[1:]]
                picks = [rng.choice(picks) for _ in range(k)]
            lines.append("%s = Concat(dim=1)(%s)" % (name, ", ".join(p[0] for p in picks)))
            vals.append((name, (sum(p[1][0] for p in picks),) + picks[0][1][1:]))
        else:
            src = rng.choice(four_d)
            same = [v for v in four_d if v[1] == src[1]]
            k = rng.randint(2, 3)
            picks = [src] + [rng.choice(same) for _ in range(k - 1)]
            if bad and rng.random() < 0.5:
                picks[-1] = rng.choice(four_d)
            lines.append("%s = Add()(%s)" % (name, ", ".join(p[0] for p in picks)))
            vals.append((name, src[1]))
    if rng.random() < 0.5:
        last = vals[-1]
        feat = last[1][0] * last[1][1] * last[1][2]
        if bad and rng.random() < 0.5:
            feat += 1
        out = rng.randint(1, 5)
        lines.append("f = Flatten()(%s)" % last[0])
        lines.append("output = Linear(%d, %d)(f)" % (feat, out))
    return "\n".join(lines) + "\n", (rng.randint(1, 3), C0, H, W)


def random_linear(rng, allow_invalid):
    lead = [rng.randint(1, 4) for _ in range(rng.randint(0, 3))]
    fin, fout = rng.randint(1, 8), rng.randint(1, 8)
    got = fin + (1 if allow_invalid and rng.random() < 0.2 else 0)
    text = "Linear(%d, %d%s)\n" % (fin, fout, "" if rng.random() < 0.7 else ", bias=False")
    if rng.random() < 0.3 and len(lead) >= 1:
        s, e = sorted(rng.sample(range(-len(lead) - 1, len(lead) + 1), 2))
        text = "Flatten(%d, %d)\n" % (s, e) + text
        return text, tuple(lead + [got])
    return text, tuple(lead + [got])


def main():
    warnings.filterwarnings("ignore")
    seed = common.test_seed()
    rng = random.Random(seed)
    torch.manual_seed(seed)
    n_cases = int(os.environ.get("CNN_LIVE_CASES", "200"))
    t = common.Tally()
    checked = rejected = 0
    worst = 0.0
    for case in range(n_cases):
        if rng.random() < 0.7:
            text, xshape = random_graph(rng, True)
        else:
            text, xshape = random_linear(rng, True)
        x32 = torch.randn(*xshape).float()
        try:
            m, _, is_graph = graphmodel.build(text)
            m = m.double()
            for p in m.parameters():
                with torch.no_grad():
                    p.copy_(p.float().double())
            x = x32.double().requires_grad_(True)
            y = m(input=x) if is_graph else m(x)
            torch_err = None
        except Exception as e:
            torch_err = "%s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else "")
        if torch_err is not None:
            r = common.run_cnn(text, {"input": x32.numpy()})
            rejected += 1
            t.ok(r.rc == 1 and r.stderr.strip() != "" and "left behind" not in r.stderr,
                 "case %d: PyTorch rejects (%s) but cnn exited %d: %s\n%s"
                 % (case, torch_err, r.rc, r.stderr.strip()[:300], text))
            continue
        weights = {k: v.float().numpy() for k, v in m.state_dict().items()}
        gy32 = torch.randn(*y.shape).float()
        y.backward(gy32.double())
        r = common.run_cnn(text, {"input": x32.numpy()}, weights, gy32.numpy())
        checked += 1
        if not t.ok(r.rc == 0, "case %d: cnn failed (%d): %s\n%s" % (case, r.rc, r.stderr.strip()[:400], text)):
            continue
        pairs = [("output", r.output.get("output"), y.detach().numpy()),
                 ("grad input", r.grads.get("input"), x.grad.numpy())]
        for pname, p in m.named_parameters():
            # A node off the path to the output gets no gradient in PyTorch: zeros.
            want = p.grad.numpy() if p.grad is not None else np.zeros(tuple(p.shape))
            pairs.append(("grad " + pname, r.grads.get(pname), want))
        for what, got, want in pairs:
            e = common.max_rel_err(got, want) if got is not None else float("inf")
            worst = max(worst, e)
            t.ok(e <= TOL, "case %d: %s differs, relative error %.3g\n%s" % (case, what, e, text))
    print("%d models compared with PyTorch (worst relative error %.3g), %d rejected by both"
          % (checked, worst, rejected))
    t.finish()


if __name__ == "__main__":
    main()
