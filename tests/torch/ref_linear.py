"""Reference cases: Linear, Flatten, Unflatten, Identity, and graph models
joined by Concat and Add (see gen_reference.py)."""

INCEPTION = """# A small Inception module: parallel 1x1, 3x3, 5x5 'same' convolutions
b1 = Conv2d(3, 4, 1)(input)
b2 = Conv2d(3, 4, 3, padding=1)(input)
b3 = Conv2d(3, 2, 5, padding=2)(input)
output = Concat(dim=1)(b1, b2, b3)
"""

RESIDUAL = """c1 = Conv2d(4, 4, 3, padding=1)(input)
c2 = Conv2d(4, 4, 3, padding=1, bias=False)(c1)
s = Add()(c2, input)
head = Sequential(Flatten(), Linear(64, 3))(s)
"""

DEPTHWISE_SEPARABLE = """dw = Conv2d(4, 4, 3, padding=1, groups=4)(input)
pw = Conv2d(4, 6, 1)(dw)
"""

SHARED = """a = Conv2d(2, 3, 3, padding=1)(input)
b = Conv2d(3, 3, 1)(a)
c = Conv2d(3, 3, 1)(a)
d = Add()(b, c, a)
output = Concat(dim=-1)(d, a, d)
"""

CASES = [
    ("linear_basic", "Linear(5, 3)", (4, 5)),
    ("linear_no_bias", "Linear(6, 2, bias=False)", (3, 6)),
    ("linear_leading_dims", "Linear(4, 3)", (2, 3, 5, 4)),
    ("linear_1d", "Linear(7, 1)", (7,)),
    ("linear_seq", "Flatten()\nLinear(24, 5)\nLinear(5, 2)", (3, 2, 3, 4)),
    ("flatten_range", "Flatten(1, 2)", (2, 3, 4, 5)),
    ("flatten_negative", "Flatten(-3, -2)", (2, 3, 4, 5)),
    ("flatten_all", "Flatten(0, -1)", (2, 3, 4)),
    ("unflatten", "Unflatten(1, (2, -1))", (3, 8, 2)),
    ("identity_args", "Identity(54, unused_argument1=0.1)", (2, 3)),
    ("graph_inception", INCEPTION, (2, 3, 6, 5)),
    ("graph_residual", RESIDUAL, (2, 4, 4, 4)),
    ("graph_depthwise_separable", DEPTHWISE_SEPARABLE, (2, 4, 5, 5)),
    ("graph_shared_values", SHARED, (2, 2, 4, 3)),
]
