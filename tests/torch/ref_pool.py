"""Reference cases for the pooling family (see gen_reference.py): max,
average and adaptive pooling in 1d/2d/3d with every option, odd sizes,
unbatched inputs, ties, and max unpooling with its "indices" input."""
import torch


def cnn_sequential(model):
    """Runs a Sequential as cnn does: the first module takes every model
    input (MaxUnpool's input and indices), and a module's two outputs
    (values and indices) both feed the next one, as MaxPool with
    return_indices=True feeds MaxUnpool. nn.Sequential passes one value."""
    def forward(*inputs):
        vals = inputs
        for m in model:
            y = m(*vals)
            vals = y if isinstance(y, tuple) else (y,)
        return vals[0] if len(vals) == 1 else vals

    model.forward = forward


def pool_indices(pool, shape):
    """Indices of `pool` (a MaxPool with return_indices=True) on a random
    input of `shape`: what MaxUnpool receives in practice."""
    def make(gen):
        return pool(torch.randn(*shape, generator=gen))[1]

    return make


def unpool_case(name, text, in_shape, pool, pool_shape):
    return (name, text, in_shape,
            {"init": cnn_sequential, "inputs": {"indices": pool_indices(pool, pool_shape)}})


SEQ = {"init": cnn_sequential}

# (case name, model text, input shape[, options])
CASES = [
    # max pooling
    ("pool_max1d_basic", "MaxPool1d(3)", (2, 3, 10)),
    ("pool_max1d_all", "MaxPool1d(4, stride=2, padding=2, dilation=2, return_indices=True, ceil_mode=True)", (2, 2, 13)),
    ("pool_max1d_unbatched", "MaxPool1d(2, stride=1, return_indices=True)", (3, 7)),
    ("pool_max2d_basic", "MaxPool2d(2)", (2, 3, 8, 7)),
    ("pool_max2d_stride_pad", "MaxPool2d(3, stride=2, padding=1)", (2, 2, 9, 8)),
    ("pool_max2d_indices_ceil", "MaxPool2d((3, 2), stride=(2, 3), padding=(1, 1), return_indices=True, ceil_mode=True)", (2, 2, 7, 8)),
    ("pool_max2d_dilation", "MaxPool2d(3, stride=1, dilation=(2, 3), padding=1, return_indices=True)", (1, 2, 9, 10)),
    ("pool_max2d_ceil_last_window", "MaxPool2d(2, stride=2, padding=1, ceil_mode=True, return_indices=True)", (2, 1, 5, 6)),
    ("pool_max2d_unbatched", "MaxPool2d(2, return_indices=True)", (3, 5, 6)),
    ("pool_max2d_ties", "MaxPool2d(2, stride=1)\nMaxPool2d(3, stride=1, return_indices=True)", (2, 2, 6, 6)),
    ("pool_max3d_basic", "MaxPool3d(2)", (1, 2, 4, 5, 6)),
    ("pool_max3d_all", "MaxPool3d((2, 3, 2), stride=(1, 2, 2), padding=(1, 1, 0), dilation=(2, 1, 1), return_indices=True, ceil_mode=True)", (1, 2, 5, 6, 5)),
    ("pool_max3d_unbatched", "MaxPool3d(2, stride=1, padding=1, return_indices=True)", (2, 3, 2, 3)),
    # average pooling
    ("pool_avg1d_basic", "AvgPool1d(3)", (2, 3, 10)),
    ("pool_avg1d_ceil_pad", "AvgPool1d(4, stride=3, padding=2, ceil_mode=True)", (2, 2, 11)),
    ("pool_avg1d_exclude_pad", "AvgPool1d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)", (2, 2, 8)),
    ("pool_avg1d_unbatched", "AvgPool1d(2, stride=1, padding=1)", (3, 5)),
    ("pool_avg2d_basic", "AvgPool2d(2)", (2, 3, 7, 6)),
    ("pool_avg2d_ceil_include", "AvgPool2d(3, stride=2, padding=1, ceil_mode=True)", (2, 2, 8, 7)),
    ("pool_avg2d_ceil_exclude", "AvgPool2d((3, 2), stride=(2, 3), padding=(1, 1), ceil_mode=True, count_include_pad=False)", (2, 2, 8, 9)),
    ("pool_avg2d_divisor", "AvgPool2d(3, stride=2, padding=1, divisor_override=4)", (1, 2, 7, 7)),
    ("pool_avg2d_divisor_ceil", "AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False, divisor_override=-3)", (2, 1, 6, 8)),
    ("pool_avg2d_unbatched", "AvgPool2d(3, stride=2, padding=1)", (2, 7, 6)),
    ("pool_avg3d_basic", "AvgPool3d(2)", (1, 2, 4, 5, 6)),
    ("pool_avg3d_all", "AvgPool3d((3, 2, 2), stride=(2, 1, 2), padding=(1, 0, 1), ceil_mode=True, count_include_pad=False)", (1, 2, 5, 4, 7)),
    ("pool_avg3d_divisor", "AvgPool3d(2, stride=1, padding=1, divisor_override=3)", (1, 2, 3, 3, 4)),
    ("pool_avg3d_ceil_include", "AvgPool3d(3, stride=2, padding=1, ceil_mode=True)", (1, 1, 4, 5, 6)),
    # adaptive pooling
    ("pool_aavg1d", "AdaptiveAvgPool1d(4)", (2, 3, 10)),
    ("pool_aavg1d_up", "AdaptiveAvgPool1d(7)", (2, 2, 5)),
    ("pool_aavg1d_unbatched", "AdaptiveAvgPool1d(3)", (2, 8)),
    ("pool_aavg2d", "AdaptiveAvgPool2d((3, 4))", (2, 2, 7, 9)),
    ("pool_aavg2d_none", "AdaptiveAvgPool2d((None, 3))", (2, 2, 5, 7)),
    ("pool_aavg2d_global", "AdaptiveAvgPool2d(1)", (3, 4, 5, 5)),
    ("pool_aavg3d", "AdaptiveAvgPool3d((2, None, 3))", (1, 2, 5, 4, 7)),
    ("pool_aavg3d_up", "AdaptiveAvgPool3d(4)", (1, 1, 3, 2, 5)),
    ("pool_amax1d", "AdaptiveMaxPool1d(4, return_indices=True)", (2, 3, 10)),
    ("pool_amax1d_ties", "MaxPool1d(3, stride=1)\nAdaptiveMaxPool1d(3, return_indices=True)", (2, 2, 9)),
    ("pool_amax2d", "AdaptiveMaxPool2d((3, None), return_indices=True)", (2, 2, 7, 5)),
    ("pool_amax2d_up", "AdaptiveMaxPool2d((5, 7))", (1, 2, 3, 4)),
    ("pool_amax2d_unbatched", "AdaptiveMaxPool2d(2, return_indices=True)", (3, 5, 5)),
    ("pool_amax3d", "AdaptiveMaxPool3d((2, 3, 2), return_indices=True)", (1, 2, 5, 7, 4)),
    ("pool_amax3d_none", "AdaptiveMaxPool3d((None, 2, 1))", (2, 1, 3, 5, 4)),
    # max unpooling: the model's inputs are "input" and "indices"
    unpool_case("unpool_1d", "MaxUnpool1d(2)", (2, 3, 4),
                torch.nn.MaxPool1d(2, return_indices=True), (2, 3, 8)),
    unpool_case("unpool_1d_stride_pad", "MaxUnpool1d(3, stride=2, padding=1)", (2, 2, 5),
                torch.nn.MaxPool1d(3, stride=2, padding=1, return_indices=True), (2, 2, 9)),
    unpool_case("unpool_2d", "MaxUnpool2d(2)", (2, 3, 3, 4),
                torch.nn.MaxPool2d(2, return_indices=True), (2, 3, 6, 8)),
    unpool_case("unpool_2d_stride_pad", "MaxUnpool2d(3, stride=2, padding=1)", (1, 2, 4, 4),
                torch.nn.MaxPool2d(3, stride=2, padding=1, return_indices=True), (1, 2, 7, 7)),
    unpool_case("unpool_2d_rect", "MaxUnpool2d((2, 3), stride=(2, 1))", (2, 2, 3, 4),
                torch.nn.MaxPool2d((2, 3), stride=(2, 1), return_indices=True), (2, 2, 6, 6)),
    unpool_case("unpool_2d_unbatched", "MaxUnpool2d(2)", (3, 3, 3),
                torch.nn.MaxPool2d(2, return_indices=True), (3, 6, 6)),
    unpool_case("unpool_3d", "MaxUnpool3d(2, stride=2)", (1, 2, 2, 3, 2),
                torch.nn.MaxPool3d(2, return_indices=True), (1, 2, 4, 6, 4)),
    unpool_case("unpool_3d_pad", "MaxUnpool3d((2, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))", (1, 2, 3, 3, 4),
                torch.nn.MaxPool3d((2, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), return_indices=True), (1, 2, 4, 5, 7)),
    # MaxPool's two outputs feed MaxUnpool in a Sequential model
    ("pool_unpool_seq", "MaxPool2d(2, return_indices=True)\nMaxUnpool2d(2)", (2, 2, 6, 8), SEQ),
    ("pool_unpool_seq_overlap", "MaxPool2d(3, stride=2, return_indices=True)\nMaxUnpool2d(3, stride=2)", (1, 2, 7, 9), SEQ),
    ("pool_unpool_seq_1d", "MaxPool1d(2, return_indices=True)\nMaxUnpool1d(2)\nAvgPool1d(2)", (2, 3, 8), SEQ),
    ("pool_unpool_seq_3d", "MaxPool3d(2, return_indices=True)\nMaxUnpool3d(2)", (1, 2, 4, 4, 6), SEQ),
]
