#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora into fuzz/corpus/NAME/: small valid
files of every format (and a few near misses), which libFuzzer then mutates.

    python3 fuzz/make_corpus.py [--fuzz-build build-fuzz]

Only the standard library is needed, plus Pillow for the JPEG seeds (skipped
without it). The checkpoint seeds come from the checkpoint fuzz target itself
(CNN_FUZZ_WRITE_SEEDS), so they always match the model it loads them into:
build it first with `make fuzz-build`.
"""
import argparse
import gzip
import io
import json
import os
import struct
import subprocess
import sys
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- model files ---------------------------------------------------------
MODELS = {
    "conv2d": "Conv2d(3, 4, kernel_size=3, padding=1)\nReLU()\nMaxPool2d(2)\nFlatten()\nLinear(64, 10)\n",
    "conv_modes": "Conv2d(3, 4, (3, 2), stride=(2, 1), padding='same', padding_mode='reflect', dilation=1)\n"
                  "Conv2d(4, 4, 3, padding=2, padding_mode='circular', groups=2, bias=False)\n",
    "conv1d": "Conv1d(1, 2, 3, padding='same')\nBatchNorm1d(2)\nELU(alpha=0.5)\nAvgPool1d(2, ceil_mode=True)\n",
    "conv3d": "Conv3d(2, 2, 3, padding=1, padding_mode='replicate')\nInstanceNorm3d(2, affine=True)\n"
              "AdaptiveAvgPool3d((1, 2, 2))\nFlatten()\n",
    "transpose": "ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1)\nGroupNorm(1, 2)\nGELU(approximate='tanh')\n",
    "norms": "BatchNorm2d(3, momentum=None)\nLayerNorm([8, 8])\nInstanceNorm2d(3)\nHardswish()\nDropout2d(0.25)\n",
    "acts": "Flatten()\nLinear(192, 16)\nPReLU(16)\nRReLU()\nSoftplus(beta=2, threshold=10)\nHardtanh(-2, 2)\n"
            "LeakyReLU(0.1)\nSiLU()\nReLU6()\nHardsigmoid()\nTanh()\nSigmoid()\nDropout(p=0.5)\nLogSoftmax(dim=1)\n",
    "pools": "MaxPool2d(3, stride=2, padding=1, dilation=1, ceil_mode=True)\nAvgPool2d(2, count_include_pad=False, divisor_override=3)\n"
             "AdaptiveMaxPool2d(1)\nFlatten(1)\nSoftmax(dim=-1)\n",
    "unpool": "p, i = MaxPool2d(2, return_indices=True)(input)\nu = MaxUnpool2d(2)(p, i)\n",
    "graph": "a = Conv2d(3, 4, 1)(input)\nb = Conv2d(3, 4, 3, padding=1)(input)\nc = Concat(dim=1)(a, b)\n"
             "d = Add()(a, b)\noutputs = c, d\n",
    "inputs": "other = Input()\na = Add()(input, other)\nr = nn.ReLU(inplace=True)(a)\n",
    "sequential": "nn.Sequential(\n    nn.Conv2d(3, 6, 5, padding=2),\n    nn.ReLU(),\n    nn.Flatten(),\n"
                  "    nn.Unflatten(1, (6, 64)),\n    nn.Identity(),\n)\n",
    "nested": "f = nn.Sequential(nn.Conv1d(1, 2, 3), nn.ReLU())(input)\ng = Flatten()(f)\n",
    "arith": "# arithmetic\nLinear(16 * 5 * 5 // 25 - 14 + 2 ** 1, (3 + 1) * 2)\n",
    "errors": "Conv2d(1, 6, 5\nConv2D(1, 2)\nLinear(2, 3, bias='yes')\n",
}


def model_corpus():
    for name, text in MODELS.items():
        put("model", name + ".txt", text)
    for f in sorted(os.listdir(os.path.join(ROOT, "models"))):
        with open(os.path.join(ROOT, "models", f)) as fp:
            put("model", "models_" + f, fp.read())


# ---- safetensors -----------------------------------------------------------
def safetensors(tensors, meta=None, pad=True):
    """tensors: list of (name, dtype, shape, raw bytes)."""
    header = {}
    if meta:
        header["__metadata__"] = meta
    off = 0
    for name, dt, shape, raw in tensors:
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(t[3] for t in tensors)


def f32(vals):
    return struct.pack("<%df" % len(vals), *vals)


def safetensors_corpus():
    put("safetensors", "f32.st", safetensors([("w", "F32", [2, 3], f32([1, -2, 3.5, 0, 1e-30, 6]))]))
    put("safetensors", "mixed.st", safetensors([
        ("x", "U8", [2, 2], bytes([0, 1, 254, 255])),
        ("y", "I64", [2], struct.pack("<2q", -1, 1 << 40)),
        ("h", "F16", [3], struct.pack("<3H", 0x3c00, 0x7c00, 0x0001)),
        ("b", "BF16", [2], struct.pack("<2H", 0x3f80, 0xff80)),
        ("d", "F64", [1], struct.pack("<d", 2.5)),
        ("i", "I32", [2], struct.pack("<2i", -7, 7)),
    ], meta={"format": "pt", "k": "v \"q\""}))
    put("safetensors", "scalar_empty.st", safetensors([("s", "F32", [], f32([7])), ("e", "F32", [0, 4], b"")]))
    put("safetensors", "empty.st", safetensors([]))
    put("safetensors", "unpadded.st", safetensors([("a", "F32", [1], f32([1]))], pad=False))
    put("safetensors", "gap.st", struct.pack("<Q", 60) + b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}    ' + b"\0" * 8)
    put("safetensors", "nested.st", safetensors([], meta={"a": "[[[[{}]]]]"}))


# ---- IDX -----------------------------------------------------------------------
def idx(type_code, dims, payload):
    return bytes([0, 0, type_code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


def idx_input(mode, images, labels):
    return bytes([mode]) + struct.pack("<H", len(images)) + images + labels


def idx_corpus():
    imgs = idx(8, [3, 4, 4], bytes(range(48)))
    labs = idx(8, [3], bytes([0, 9, 4]))
    put("idx", "plain", idx_input(0, imgs, labs))
    put("idx", "test_split", idx_input(4, imgs, labs))
    put("idx", "gz_in_harness", idx_input(1, imgs, labs))
    put("idx", "gz_raw", idx_input(2, gzip.compress(imgs, mtime=0), labs))
    put("idx", "bad_label", idx_input(0, imgs, idx(8, [3], bytes([0, 10, 1]))))
    put("idx", "count_mismatch", idx_input(0, imgs, idx(8, [2], bytes([0, 1]))))
    put("idx", "big_header", idx_input(1, idx(8, [60000, 28, 28], b""), labs))


# ---- CIFAR-10 --------------------------------------------------------------------
def cifar_corpus():
    rec = lambda label, v: bytes([label]) + bytes([v % 256]) * 3072
    names = "airplane\nautomobile\nbird\n"
    put("cifar", "one", bytes([0]) + struct.pack("<H", 0) + rec(3, 7))
    put("cifar", "two_names", bytes([1]) + struct.pack("<H", len(names)) + names.encode() + rec(2, 1) + rec(0, 200))
    put("cifar", "label_out_of_names", bytes([1]) + struct.pack("<H", len(names)) + names.encode() + rec(5, 1))
    put("cifar", "partial", bytes([0]) + struct.pack("<H", 0) + rec(1, 1)[:3000])


# ---- images ------------------------------------------------------------------------
def png(w, h, color, depth, rows, interlace=0, palette=None, extra=b""):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, interlace)
    raw = b"".join(b"\0" + r for r in rows)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    if palette:
        out += chunk(b"PLTE", palette)
    return out + extra + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def image_corpus():
    put("image", "gray8.png", png(4, 3, 0, 8, [bytes([i * 20 + j for j in range(4)]) for i in range(3)]))
    put("image", "rgb8.png", png(3, 2, 2, 8, [bytes(range(9)), bytes(range(9, 18))]))
    put("image", "rgba8.png", png(2, 2, 6, 8, [bytes(range(8)), bytes(range(8, 16))]))
    put("image", "gray_alpha16.png", png(2, 1, 4, 16, [bytes(range(8))]))
    put("image", "gray2.png", png(5, 2, 0, 2, [bytes([0x1b, 0xe4]), bytes([0xff, 0x00])]))
    put("image", "palette.png", png(2, 2, 3, 8, [bytes([0, 1]), bytes([1, 0])], palette=bytes([255, 0, 0, 0, 0, 255])))
    put("image", "interlaced.png", png(3, 3, 0, 8, [bytes([1, 2, 3])] * 3, interlace=1))
    try:
        from PIL import Image
    except ImportError:
        print("Pillow is not installed: no JPEG seeds", file=sys.stderr)
        return
    for name, mode, kw in [("gray.jpg", "L", {}), ("rgb.jpg", "RGB", {}),
                           ("progressive.jpg", "RGB", {"progressive": True}),
                           ("subsampled.jpg", "RGB", {"subsampling": 2, "quality": 30})]:
        im = Image.new(mode, (9, 7))
        im.putdata([((x * 37 + y * 11) % 256,) * len(mode) if mode != "L" else (x * 37 + y * 11) % 256
                    for y in range(7) for x in range(9)])
        b = io.BytesIO()
        im.save(b, "JPEG", **kw)
        put("image", name, b.getvalue())


def checkpoint_corpus(fuzz_build):
    exe = os.path.join(ROOT, fuzz_build, "fuzz_checkpoint")
    if not os.path.exists(exe):
        print("%s is not built (make fuzz-build): no checkpoint seeds" % exe, file=sys.stderr)
        return
    d = os.path.join(OUT, "checkpoint")
    os.makedirs(d, exist_ok=True)
    subprocess.run([exe], env=dict(os.environ, CNN_FUZZ_WRITE_SEEDS=d), check=True)
    put("checkpoint", "not_a_checkpoint.st", safetensors([("0.weight", "F32", [1], f32([1]))], meta={"format": "pt"}))


OPTIONS = [
    ("CrossEntropyLoss()", "SGD(lr=0.1, momentum=0.9, nesterov=True)", "StepLR(step_size=1, gamma=0.5)"),
    ("CrossEntropyLoss(label_smoothing=0.1, reduction='sum')", "Adam(lr=1e-3, betas=(0.9, 0.99), amsgrad=True)",
     "SequentialLR([LinearLR(start_factor=0.1, total_iters=2), CosineAnnealingLR(T_max=3)], milestones=[2])"),
    ("NLLLoss(weight=(1.0, 2.0, 0.5))", "AdamW(lr=0.01, weight_decay=0.01)", "MultiStepLR(milestones=[1, 2], gamma=0.1)"),
    ("MSELoss(reduction='mean')", "RMSprop(lr=0.01, alpha=0.9, momentum=0.5, centered=True)", "ExponentialLR(gamma=0.9)"),
    ("BCEWithLogitsLoss(pos_weight=(2.0, 1.0, 1.0))", "SGD(lr=0.1, weight_decay=5e-4, dampening=0.1)", ""),
    ("SmoothL1Loss(beta=0.5)", "Adam(lr=0.001)", "CosineAnnealingLR(T_max=10, eta_min=1e-4)"),
    ("L1Loss()", "SGD(lr=1e300)", "LinearLR(start_factor=1e-300, total_iters=1)"),
    ("BCELoss()", "RMSprop()", "StepLR(step_size=0)"),
]


def options_corpus():
    for i, (loss, opt, sched) in enumerate(OPTIONS):
        put("options", "spec%d" % i, "\0".join([loss, opt, sched]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fuzz-build", default="build-fuzz")
    a = ap.parse_args()
    model_corpus()
    safetensors_corpus()
    idx_corpus()
    cifar_corpus()
    image_corpus()
    checkpoint_corpus(a.fuzz_build)
    options_corpus()
    for t in sorted(os.listdir(OUT)):
        print("%s: %d files" % (t, len(os.listdir(os.path.join(OUT, t)))))


if __name__ == "__main__":
    main()
