"""The PyTorch twin of a cnn model file: builds an nn.Module that computes
the same function with the same state_dict names, for both the Sequential
form (one module per line) and the graph form (name = Module(...)(inputs)).

Concat(dim) and Add() are cnn's combinators; here they are small modules
around torch.cat and +."""
import ast

import torch
import torch.nn as nn


class Concat(nn.Module):
    def __init__(self, dim=1):
        super().__init__()
        self.dim = dim

    def forward(self, *xs):
        return torch.cat(xs, dim=self.dim)


class Add(nn.Module):
    def forward(self, *xs):
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


def _ctor(expr):
    """Evaluates a constructor call such as "Conv2d(1, 6, 5)" or
    "nn.Sequential(nn.Conv2d(...), ...)"."""
    env = {"nn": nn, "torch": torch, "Concat": Concat, "Add": Add, "inf": float("inf")}
    env.update({k: getattr(nn, k) for k in dir(nn) if k[:1].isupper()})
    env["Concat"] = Concat
    env["Add"] = Add
    return eval(expr, env)


def _statements(text):
    """Joins lines inside brackets and drops comments, as the cnn parser does."""
    tree = ast.parse(text)
    return [(node, ast.get_source_segment(text, node)) for node in tree.body]


class GraphModel(nn.Module):
    def __init__(self, text):
        super().__init__()
        self.steps = []  # (targets, module name, input names, forward kwargs)
        self.inputs = []
        self.outputs = None
        for node, src in _statements(text):
            if not isinstance(node, ast.Assign):
                raise ValueError("graph form expected: " + src)
            tgt = node.targets[0]
            names = [e.id for e in tgt.elts] if isinstance(tgt, ast.Tuple) else [tgt.id]
            call = node.value  # Module(...)(inputs)
            if names == ["outputs"]:
                v = node.value
                self.outputs = [e.id for e in v.elts] if isinstance(v, (ast.Tuple, ast.List)) else [v.id]
                continue
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "Input":
                self.inputs.append(names[0])
                continue
            ctor_src = ast.get_source_segment(text, call.func)
            inputs = [a.id for a in call.args]
            kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
            self.add_module(names[0], _ctor(ctor_src))
            self.steps.append((names, names[0], inputs, kwargs))
        out = [s for s in self.steps if s[1] == "output"]
        self.out_step = out[0] if out else self.steps[-1]

    def forward(self, **inputs):
        env = dict(inputs)
        for names, mod, ins, kw in self.steps:
            y = getattr(self, mod)(*[env[i] for i in ins], **kw)
            if len(names) == 1:
                env[names[0]] = y
            else:
                for n, v in zip(names, y):
                    env[n] = v
        if self.outputs is not None:
            return env[self.outputs[0]] if len(self.outputs) == 1 else tuple(env[n] for n in self.outputs)
        names = self.out_step[0]
        return env[names[0]] if len(names) == 1 else tuple(env[n] for n in names)


def build(text):
    """Returns (module, input names, is_graph)."""
    stmts = _statements(text)
    if any(isinstance(n, ast.Assign) for n, _ in stmts):
        g = GraphModel(text)
        used = list(g.inputs)
        for _, _, ins, _ in g.steps:
            for i in ins:
                if i == "input" and i not in used:
                    used.append(i)
        return g, used, True
    mods = [_ctor(src) for _, src in stmts]
    if len(mods) == 1 and isinstance(mods[0], nn.Sequential):
        return mods[0], ["input"], False
    return nn.Sequential(*mods), ["input"], False
