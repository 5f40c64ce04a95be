"""Reference cases for the activation and dropout family (see gen_reference.py).

Random layers in training mode (RReLU with lower < upper, Dropout and
Dropout2d with 0 < p < 1) cannot match PyTorch's draws and are tested by
their law in tests/unit/test_random_layers.c; their eval mode is here, and so
are the training cases that draw nothing (p = 0 or 1, lower == upper)."""

TRAIN = {"train": True}
KEEP_INIT = {"init": lambda model: None}  # keep the module's own initial weight


def inplace(text):
    """PyTorch refuses an in-place op on the generator's input (a leaf that
    requires grad), so in-place modules follow LeakyReLU(1.0), the identity."""
    return "LeakyReLU(1.0)\n" + text + "\n"


# (case name, model text, input shape[, options])
CASES = [
    ("act_sigmoid", "Sigmoid()", (2, 3, 4)),
    ("act_tanh", "Tanh()", (3, 5)),
    ("act_relu", "ReLU()", (2, 3, 3, 3)),
    ("act_relu_inplace_train", inplace("ReLU(inplace=True)"), (4, 5), TRAIN),
    ("act_leaky_default", "LeakyReLU()", (2, 4, 3)),
    ("act_leaky_slope", inplace("LeakyReLU(negative_slope=0.2, inplace=True)"), (3, 2, 2, 2)),
    ("act_leaky_negative", "LeakyReLU(-0.5)", (7,)),
    ("act_prelu_shared", "PReLU()", (2, 3, 4)),
    ("act_prelu_channels", "PReLU(num_parameters=3, init=0.1)", (2, 3, 4, 2)),
    ("act_prelu_2d", "PReLU(4)", (3, 4)),
    ("act_prelu_3d_channels", "PReLU(2, 0.4)", (2, 2, 5), KEEP_INIT),
    ("act_prelu_1d_shared", "PReLU(init=-0.3)", (6,), KEEP_INIT),
    ("act_prelu_5d", "PReLU(2)", (1, 2, 2, 3, 2)),
    ("act_rrelu_eval", "RReLU()", (2, 3, 4)),
    ("act_rrelu_eval_bounds", inplace("RReLU(0.05, 0.5, inplace=True)"), (3, 6)),
    ("act_rrelu_eval_negative", "RReLU(lower=-0.4, upper=0.1)", (4, 4)),
    ("act_rrelu_train_fixed", "RReLU(0.2, 0.2)", (2, 8), TRAIN),
    ("act_softmax_dim1", "Softmax(dim=1)", (2, 4, 3)),
    ("act_softmax_neg", "Softmax(-1)", (3, 5)),
    ("act_softmax_implicit_1d", "Softmax()", (6,)),
    ("act_softmax_implicit_2d", "Softmax(dim=None)", (3, 4)),
    ("act_softmax_implicit_3d", "Softmax()", (3, 2, 4)),
    ("act_softmax_implicit_4d", "Softmax()", (2, 3, 2, 2)),
    ("act_softmax_dim3_5d", "Softmax(3)", (2, 1, 2, 4, 2)),
    ("act_logsoftmax_dim0", "LogSoftmax(0)", (4, 3)),
    ("act_logsoftmax_implicit_2d", "LogSoftmax()", (3, 5)),
    ("act_logsoftmax_implicit_3d", "LogSoftmax()", (3, 2, 2)),
    ("act_logsoftmax_neg2", "LogSoftmax(dim=-2)", (2, 3, 4, 2)),
    ("act_elu", "ELU()", (2, 3, 4)),
    ("act_elu_alpha", inplace("ELU(alpha=0.5, inplace=True)"), (3, 4)),
    ("act_elu_negative_alpha", "ELU(-0.7)", (10,)),
    ("act_gelu", "GELU()", (2, 3, 4)),
    ("act_gelu_tanh", "GELU(approximate='tanh')", (3, 5)),
    ("act_silu", inplace("SiLU(inplace=True)"), (2, 2, 5)),
    ("act_relu6", "ReLU6()", (2, 3, 4)),
    ("act_hardtanh", "Hardtanh()", (3, 6)),
    ("act_hardtanh_range", inplace("Hardtanh(-0.5, 0.8, inplace=True)"), (2, 3, 3)),
    ("act_hardtanh_deprecated", "Hardtanh(min_value=-0.3, max_value=0.4)", (4, 4)),
    ("act_hardsigmoid", "Hardsigmoid()", (2, 3, 4)),
    ("act_hardswish", inplace("Hardswish(inplace=True)"), (2, 3, 4)),
    ("act_softplus", "Softplus()", (2, 3, 4)),
    ("act_softplus_beta", "Softplus(beta=10, threshold=5)", (3, 6)),
    ("act_softplus_negative_beta", "Softplus(beta=-2, threshold=1)", (12,)),
    ("act_dropout_eval", "Dropout()", (2, 3, 4)),
    ("act_dropout_eval_p", inplace("Dropout(p=0.2, inplace=True)"), (5, 3)),
    ("act_dropout_train_p0", "Dropout(0.0)", (2, 6), TRAIN),
    ("act_dropout_train_p1", "Dropout(p=1.0)", (3, 2, 2), TRAIN),
    ("act_dropout2d_eval", "Dropout2d(0.3)", (2, 3, 4, 4)),
    ("act_dropout2d_eval_1d", "Dropout2d()", (5,)),
    ("act_dropout2d_train_p0", "Dropout2d(p=0)", (2, 3, 5), TRAIN),
    ("act_dropout2d_train_p1", "Dropout2d(1.0)", (2, 3, 2, 2), TRAIN),
    ("act_seq_mixed", "Hardswish()\nPReLU(3)\nLogSoftmax(1)\nDropout()\n", (2, 3, 4)),
    ("act_seq_train", "GELU()\nDropout2d(0.0)\nSoftmax(-1)\nPReLU()\n", (2, 2, 3), TRAIN),
]
