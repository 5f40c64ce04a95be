"""Generates the committed PyTorch reference data in tests/data/ref/.

Each case is one safetensors file: metadata "model" (the model file text),
"train" ("0"/"1") and "tol"; tensors "input" (and other model inputs),
"param.<state_dict name>", "grad_output", and the expected results computed
by PyTorch in float64 from the same float32 values: "want.output",
"want.grad.input", "want.grad.<name>", "want.state.<name>".

The cases live in tests/torch/ref_*.py, one file per layer family, each with
a list CASES of (name, model text, input shape) or (name, model text, input
shape, options) where options may hold "train": True, "inputs": {name: fn}
for extra model inputs, "tol": float, "init": fn(model) to set weights (or
replace the forward), which also stops the random weights.

Run: /usr/bin/python3 tests/torch/gen_reference.py [ref_FAMILY ...]
(rewrites the files of every family, or of the named ones)
"""
import glob
import importlib
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import graphmodel  # noqa: E402
import sft  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "ref")

def make_case(name, text, shape, gen, opts=None):
    opts = opts or {}
    train = bool(opts.get("train", False))
    model, _, is_graph = graphmodel.build(text)
    model = model.double()
    model.train(train)
    params = {}
    if "init" in opts:
        opts["init"](model)
    for pname, p in model.state_dict().items():
        if p.dtype.is_floating_point:
            if "init" not in opts:
                with torch.no_grad():
                    p.copy_(torch.randn(p.shape, generator=gen).float().double() * 0.5)
                    if pname.endswith("running_var"):
                        p.abs_().add_(0.5)
            with torch.no_grad():
                p.copy_(p.float().double())
            params["param." + pname] = p.float().clone()
        else:
            params["param." + pname] = p.clone()
    x32 = torch.randn(tuple(shape), generator=gen).float()
    x = x32.double().requires_grad_(True)
    extra = {k: fn(gen) for k, fn in opts.get("inputs", {}).items()}
    # The twin computes in float64; float inputs reach it as float64 too.
    extra64 = {k: v.double() if v.is_floating_point() else v for k, v in extra.items()}
    # A clone, so that an in-place first module does not write into the leaf x.
    if is_graph:
        y = model(input=x.clone(), **extra64)
    else:
        y = model(x.clone(), *extra64.values()) if extra else model(x.clone())
    t = {"input": x32}
    t.update({k: v for k, v in extra.items()})
    if isinstance(y, tuple):
        t["want.indices"] = y[1]
        y = y[0]
    t["want.output"] = y.detach()
    if y.requires_grad:
        gy32 = torch.randn(tuple(y.shape), generator=gen).float()
        y.backward(gy32.double())
        t["grad_output"] = gy32
        t["want.grad.input"] = x.grad
        for pname, p in model.named_parameters():
            t["want.grad." + pname] = p.grad
    t.update(params)
    for pname, p in model.state_dict().items():
        t["want.state." + pname] = p.detach().clone()
    meta = {"model": text if text.endswith("\n") else text + "\n", "train": "1" if train else "0",
            "tol": str(opts.get("tol", 1e-5)),
            "generator": "tests/torch/gen_reference.py, torch " + torch.__version__}
    sft.save(os.path.join(OUT, name + ".safetensors"), t, meta)


def main():
    os.makedirs(OUT, exist_ok=True)
    here = os.path.dirname(os.path.abspath(__file__))
    total = 0
    only = set(sys.argv[1:])
    for path in sorted(glob.glob(os.path.join(here, "ref_*.py"))):
        if only and os.path.basename(path)[:-3] not in only:
            continue
        mod = importlib.import_module(os.path.basename(path)[:-3])
        # One generator per family, so adding cases to one file leaves the
        # other families' data unchanged.
        gen = torch.Generator().manual_seed(20261122 + sum(map(ord, mod.__name__)))
        for case in mod.CASES:
            name, text, shape = case[:3]
            make_case(name, text, shape, gen, case[3] if len(case) > 3 else None)
            total += 1
    print("wrote %d cases to %s" % (total, OUT))


if __name__ == "__main__":
    main()
