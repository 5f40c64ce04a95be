"""Generates the committed PyTorch reference data in tests/data/ref/.

Each case is one safetensors file: metadata "model" (the model file text),
"train" ("0"/"1") and "tol"; tensors "input" (and other model inputs),
"param.<state_dict name>", "grad_output", and the expected results computed
by PyTorch in float64 from the same float32 values: "want.output",
"want.grad.input", "want.grad.<name>", "want.state.<name>".

Run: /usr/bin/python3 tests/torch/gen_reference.py   (rewrites the files)
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sft  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "ref")

# (case name, model text, input shape)
CONV_CASES = [
    ("conv1d_basic", "Conv1d(2, 3, 3)", (2, 2, 9)),
    ("conv1d_stride_pad_dil", "Conv1d(2, 4, 3, stride=2, padding=2, dilation=2)", (3, 2, 11)),
    ("conv1d_groups", "Conv1d(4, 6, 2, groups=2, bias=False)", (2, 4, 7)),
    ("conv1d_same_even", "Conv1d(2, 2, 4, padding='same', dilation=1)", (1, 2, 7)),
    ("conv1d_reflect", "Conv1d(2, 3, 3, padding=2, padding_mode='reflect')", (2, 2, 5)),
    ("conv1d_replicate", "Conv1d(2, 3, 3, padding=3, padding_mode='replicate')", (2, 2, 4)),
    ("conv1d_circular", "Conv1d(2, 3, 3, padding=2, padding_mode='circular')", (2, 2, 5)),
    ("conv1d_crop_replicate", "Conv1d(1, 1, 2, padding=-1, padding_mode='replicate')", (1, 1, 6)),
    ("conv2d_lenet1", "Conv2d(1, 6, kernel_size=5, padding=2)", (2, 1, 12, 12)),
    ("conv2d_rect_kernel", "Conv2d(2, 3, (5, 3), padding=(2, 1))", (1, 2, 8, 8)),
    ("conv2d_stride2", "Conv2d(3, 4, 3, stride=2, padding=1)", (2, 3, 9, 8)),
    ("conv2d_groups_dil_stride", "Conv2d(6, 4, 3, stride=(2, 1), dilation=(1, 2), groups=2, padding=(1, 2))", (2, 6, 9, 10)),
    ("conv2d_depthwise", "Conv2d(4, 4, 3, groups=4, padding=1, bias=False)", (2, 4, 7, 6)),
    ("conv2d_1x1", "Conv2d(5, 3, 1)", (2, 5, 4, 3)),
    ("conv2d_valid", "Conv2d(2, 2, 3, padding='valid')", (1, 2, 5, 6)),
    ("conv2d_same_even_dil", "Conv2d(2, 3, (4, 2), padding='same', dilation=(1, 3))", (2, 2, 7, 9)),
    ("conv2d_reflect_same", "Conv2d(2, 2, 3, padding='same', padding_mode='reflect')", (1, 2, 5, 5)),
    ("conv2d_replicate", "Conv2d(3, 2, 3, padding=(2, 1), padding_mode='replicate', stride=2)", (2, 3, 6, 7)),
    ("conv2d_circular_groups", "Conv2d(4, 4, 3, padding=1, padding_mode='circular', groups=2, dilation=2)", (1, 4, 6, 6)),
    ("conv2d_odd_sizes", "Conv2d(3, 5, (3, 2), stride=(3, 2), padding=(1, 0))", (3, 3, 11, 7)),
    ("conv3d_basic", "Conv3d(2, 3, 3, padding=1)", (1, 2, 5, 4, 5)),
    ("conv3d_stride_groups", "Conv3d(4, 2, (2, 3, 1), stride=(1, 2, 2), groups=2)", (2, 4, 4, 6, 5)),
    ("conv3d_reflect", "Conv3d(1, 2, 3, padding=1, padding_mode='reflect', dilation=(1, 1, 2))", (1, 1, 4, 4, 6)),
    ("conv3d_circular", "Conv3d(2, 2, 2, padding=(1, 0, 1), padding_mode='circular', bias=False)", (1, 2, 3, 4, 3)),
    ("conv3d_same", "Conv3d(2, 2, (2, 3, 4), padding='same')", (1, 2, 4, 5, 6)),
    ("convt1d_basic", "ConvTranspose1d(3, 2, 3)", (2, 3, 5)),
    ("convt1d_stride_outpad", "ConvTranspose1d(2, 4, 4, stride=3, padding=1, output_padding=2)", (2, 2, 5)),
    ("convt1d_groups_dil", "ConvTranspose1d(4, 6, 3, groups=2, dilation=2, padding=1, bias=False)", (1, 4, 6)),
    ("convt2d_stride2", "ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)", (2, 4, 4, 5)),
    ("convt2d_groups", "ConvTranspose2d(4, 6, (2, 3), stride=(1, 2), groups=2)", (2, 4, 5, 4)),
    ("convt2d_dil_outpad", "ConvTranspose2d(2, 3, 3, stride=1, dilation=3, output_padding=(2, 1), padding=(2, 3))", (1, 2, 5, 6)),
    ("convt2d_edge", "ConvTranspose2d(1, 1, (1, 2), bias=False)", (1, 1, 6, 8)),
    ("convt3d_basic", "ConvTranspose3d(2, 2, 2, stride=2)", (1, 2, 3, 3, 2)),
    ("convt3d_groups_pad", "ConvTranspose3d(4, 2, 3, stride=(1, 2, 1), padding=1, groups=2, output_padding=(0, 1, 0))", (1, 4, 3, 4, 3)),
    ("seq_conv_convt", "Conv2d(2, 4, 3, stride=2, padding=1)\nConvTranspose2d(4, 2, 4, stride=2, padding=1)\n", (2, 2, 8, 8)),
]


def to_module(text):
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return torch.nn.Sequential(*[eval("torch.nn." + ln) for ln in lines])


def make_case(name, text, shape, gen):
    model = to_module(text).double()
    params = {}
    for pname, p in model.state_dict().items():
        if p.dtype.is_floating_point:
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=gen).float().double() * 0.5)
            params["param." + pname] = p.float()
        else:
            params["param." + pname] = p
    x32 = torch.randn(*shape, generator=gen).float()
    x = x32.double().requires_grad_(True)
    y = model(x)
    gy32 = torch.randn(*y.shape, generator=gen).float()
    y.backward(gy32.double())
    t = {"input": x32, "grad_output": gy32, "want.output": y.detach(), "want.grad.input": x.grad}
    t.update(params)
    for pname, p in model.named_parameters():
        t["want.grad." + pname] = p.grad
    meta = {"model": text if text.endswith("\n") else text + "\n", "train": "0", "tol": "1e-5",
            "generator": "tests/torch/gen_reference.py, torch " + torch.__version__}
    sft.save(os.path.join(OUT, name + ".safetensors"), t, meta)


def main():
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(20261122)
    for name, text, shape in CONV_CASES:
        make_case(name, text, shape, gen)
    print("wrote %d cases to %s" % (len(CONV_CASES), OUT))


if __name__ == "__main__":
    main()
