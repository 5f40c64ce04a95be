#!/usr/bin/env python3
"""Writes the malformed-input corpus replayed by tests/unit/test_malformed.c:
one file (or one folder) per case, each broken in exactly one way. The files
are committed; rerun this (standard library only) after changing a case:

    python3 tests/data/malformed/make_malformed.py

Files named fuzz_* are inputs the fuzzers found crashing cnn, kept as they
were found (see fuzz/); this script leaves them alone.
"""
import gzip
import json
import os
import shutil
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def write(name, data):
    path = os.path.join(HERE, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(path, "wb") as f:
        f.write(data)


def st_raw(header_bytes, data=b"", hlen=None):
    return struct.pack("<Q", len(header_bytes) if hlen is None else hlen) + header_bytes + data


def st(tensors, meta=None):
    """A valid safetensors file from (name, dtype, shape, raw bytes)."""
    h = {}
    if meta:
        h["__metadata__"] = meta
    off = 0
    for name, dt, shape, raw in tensors:
        h[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
    b = json.dumps(h, separators=(",", ":")).encode()
    b += b" " * (-len(b) % 8)
    return st_raw(b, b"".join(t[3] for t in tensors))


def f32(vals):
    return struct.pack("<%df" % len(vals), *vals)


def entry(name, dtype, shape, begin, end):
    return '"%s":{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]}' % (name, dtype, json.dumps(shape), begin, end)


def idx(type_code, dims, payload=b""):
    return bytes([0, 0, type_code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


def idx_set(folder, images, labels, gz_images=False):
    d = os.path.join(HERE, folder)
    if os.path.isdir(d):
        shutil.rmtree(d)
    if gz_images:
        write(folder + "/train-images-idx3-ubyte.gz", gzip.compress(images, mtime=0))
    else:
        write(folder + "/train-images-idx3-ubyte", images)
    write(folder + "/train-labels-idx1-ubyte", labels)


def png(w, h, rows, color=0, depth=8):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    raw = b"".join(b"\0" + r for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def main():
    # The tensors the cases start from: a 1x1x4x4 input for model.txt.
    good_input = st([("input", "F32", [1, 1, 4, 4], f32([i / 16 for i in range(16)]))])
    write("model.txt", "# the model every weights and data case is run with: 1x4x4 images, 3 classes\n"
                       "Conv2d(1, 2, 3)\nReLU()\nFlatten()\nLinear(8, 3)\n")
    write("input.safetensors", good_input)

    # ---- safetensors: every field of the header lies in turn -------------------
    write("st_truncated.safetensors", good_input[:len(good_input) - 10])
    write("st_short.safetensors", b"\x10\0\0\0\0")
    write("st_header_past_end.safetensors", st_raw(b"{}", hlen=1000))
    write("st_header_huge.safetensors", st_raw(b"{}      ", hlen=(1 << 64) - 1))
    write("st_offsets_overlap.safetensors",
          st_raw(("{" + entry("input", "F32", [2], 0, 8) + "," + entry("b", "F32", [1], 4, 8) + "}").encode(), b"\0" * 8))
    write("st_offsets_gap.safetensors",
          st_raw(("{" + entry("input", "F32", [1], 0, 4) + "," + entry("b", "F32", [1], 8, 12) + "}").encode(), b"\0" * 12))
    write("st_offsets_reversed.safetensors", st_raw(("{" + entry("input", "F32", [2], 8, 0) + "}").encode(), b"\0" * 8))
    write("st_offsets_past_end.safetensors", st_raw(("{" + entry("input", "F32", [4], 0, 16) + "}").encode(), b"\0" * 8))
    write("st_dtype_unknown.safetensors", st_raw(("{" + entry("input", "F33", [2], 0, 8) + "}").encode(), b"\0" * 8))
    write("st_dtype_unsupported.safetensors", st_raw(("{" + entry("input", "BOOL", [2], 0, 2) + "}").encode(), b"\0" * 2))
    write("st_shape_lies.safetensors", st_raw(("{" + entry("input", "F32", [1, 1, 4, 4], 0, 60) + "}").encode(), b"\0" * 60))
    write("st_shape_negative.safetensors", st_raw(("{" + entry("input", "F32", [-1, 4], 0, 16) + "}").encode(), b"\0" * 16))
    write("st_shape_overflow.safetensors",
          st_raw(("{" + entry("input", "F32", [1 << 32, 1 << 32, 1 << 32], 0, 8) + "}").encode(), b"\0" * 8))
    # 2^38 floats (1 TiB) declared consistently by shape and offsets, in a
    # file of a few bytes: rejected from the sizes, nothing allocated.
    write("st_huge_tensor.safetensors",
          st_raw(("{" + entry("input", "F32", [1 << 19, 1 << 19], 0, 1 << 40) + "}").encode(), b"\0" * 8))
    write("st_bad_json.safetensors", st_raw(b'{"input":{"dtype":"F32",'))
    write("st_duplicate.safetensors",
          st_raw(("{" + entry("input", "F32", [1], 0, 4) + "," + entry("input", "F32", [1], 4, 8) + "}").encode(), b"\0" * 8))
    write("st_not_object.safetensors", st_raw(b"[1, 2, 3]"))
    write("st_wrong_name.safetensors", st([("image", "F32", [1, 1, 4, 4], f32([0] * 16))]))

    # ---- weights that do not fit model.txt -------------------------------------
    w = [("0.weight", "F32", [2, 1, 3, 3], f32([0.1] * 18)), ("0.bias", "F32", [2], f32([0, 0])),
         ("3.weight", "F32", [3, 8], f32([0.01] * 24)), ("3.bias", "F32", [3], f32([0] * 3))]
    write("weights_extra_key.safetensors", st(w + [("4.weight", "F32", [1], f32([0]))]))
    write("weights_missing_key.safetensors", st(w[:3]))
    write("weights_wrong_shape.safetensors", st(w[:2] + [("3.weight", "F32", [3, 9], f32([0.01] * 27))] + w[3:]))
    write("weights_wrong_dtype.safetensors", st(w[:3] + [("3.bias", "I64", [3], struct.pack("<3q", 0, 0, 0))]))

    # ---- model files --------------------------------------------------------------
    write("model_syntax.txt", "Conv2d(1, 2, 3)\nReLU(\n")
    write("model_unknown_module.txt", "Conv2d(1, 2, 3)\nRelu()\n")
    write("model_unknown_arg.txt", "Conv2d(1, 2, 3, strides=2)\n")
    write("model_duplicate_arg.txt", "Conv2d(1, 2, 3, padding=1, padding=2)\n")
    write("model_wrong_type.txt", "Conv2d(1, 2, kernel_size='3')\n")
    write("model_binary.txt", bytes([0x7f, 0x45, 0x4c, 0x46, 0xff, 0xfe, 0x00, 0x28, 0x29, 0x0a]))
    write("model_empty.txt", "# nothing but a comment\n\n")
    write("model_overflow.txt", "Linear(4294967296 * 4294967296, 2)\n")
    write("model_too_large.txt", "Linear(1099511627776, 1099511627776)\n")
    write("model_nested.txt", "Linear(" + "(" * 5000 + "8" + ")" * 5000 + ", 3)\n")
    write("model_shape_mismatch.txt", "Conv2d(1, 2, 3)\nFlatten()\nLinear(9, 3)\n")

    # ---- data sets (cnn train model.txt --data ...) --------------------------------
    images = idx(8, [3, 4, 4], bytes(range(48)))
    labels = idx(8, [3], bytes([0, 2, 1]))
    idx_set("idx_bad_magic", b"\x08\x00\x00\x03" + images[4:], labels)
    idx_set("idx_gzip_unnamed", gzip.compress(images, mtime=0), labels)
    idx_set("idx_count_mismatch", images, idx(8, [2], bytes([0, 1])))
    idx_set("idx_truncated", images[:-5], labels)
    idx_set("idx_empty", idx(8, [0, 4, 4]), idx(8, [0]))
    idx_set("idx_huge_header", idx(8, [60000, 60000, 60000]), labels)
    idx_set("idx_gzip_huge", idx(8, [1 << 20, 64, 64]), labels, gz_images=True)
    idx_set("idx_label_range", images, idx(8, [3], bytes([0, 10, 1])))
    idx_set("idx_label_model_range", images, idx(8, [3], bytes([0, 7, 1])))
    write("data_empty.safetensors", st([("x", "F32", [0, 1, 4, 4], b""), ("y", "I64", [0], b"")]))
    write("data_label_range.safetensors",
          st([("x", "F32", [2, 1, 4, 4], f32([0.5] * 32)), ("y", "I64", [2], struct.pack("<2q", 0, 5))]))
    write("data_negative_label.safetensors",
          st([("x", "F32", [2, 1, 4, 4], f32([0.5] * 32)), ("y", "I64", [2], struct.pack("<2q", 0, -1))]))
    write("data_nan.safetensors",
          st([("x", "F32", [2, 1, 4, 4], f32([0.5] * 20 + [float("nan")] + [0] * 11)),
              ("y", "I64", [2], struct.pack("<2q", 0, 1))]))
    write("data_count_mismatch.safetensors",
          st([("x", "F32", [2, 1, 4, 4], f32([0.5] * 32)), ("y", "I64", [3], struct.pack("<3q", 0, 1, 2))]))
    write("data_good.safetensors",
          st([("x", "F32", [4, 1, 4, 4], f32([(i % 7) / 7 for i in range(64)])),
              ("y", "I64", [4], struct.pack("<4q", 0, 1, 2, 1))]))
    rec = bytes([1]) + bytes(3072)
    write("cifar_truncated/data_batch_1.bin", rec + rec[:1000])
    for i in range(2, 6):
        write("cifar_truncated/data_batch_%d.bin" % i, rec)
    write("cifar_label_range/test_batch.bin", rec + bytes([7]) + bytes(3072))
    write("cifar_label_range/batches.meta.txt", "cat\ndog\n")
    for i in range(1, 6):
        write("cifar_label_range/data_batch_%d.bin" % i, rec)
    good_png = png(4, 4, [bytes([i * 16 + j for j in range(4)]) for i in range(4)])
    write("images_truncated/a/good.png", good_png)
    write("images_truncated/b/cut.png", good_png[:len(good_png) // 2])
    write("images_bad_jpeg/a/good.png", good_png)
    write("images_bad_jpeg/b/bad.jpg", b"\xff\xd8\xff\xe0" + b"\0" * 40)
    write("images_unsupported/a/good.png", good_png)
    write("images_unsupported/b/picture.bmp", b"BM" + b"\0" * 60)
    write("images_none/a/readme.txt", "no images here\n")
    # 30000 x 30000 pixels (900 MB) declared by a 70-byte file.
    write("images_png_huge/a/big.png", png(30000, 30000, [b"\0" * 4]))
    write("valid.png", good_png)
    try:
        import io
        from PIL import Image
        im = Image.new("RGB", (5, 4), (10, 200, 30))
        b = io.BytesIO()
        im.save(b, "JPEG", quality=90)
        write("valid.jpg", b.getvalue())
    except ImportError:
        print("Pillow is not installed: valid.jpg kept as it was")
    write("model_empty_parameter.txt", "LayerNorm([0, 8])\n")

    # ---- checkpoints (cnn train model.txt --data data_good.safetensors --resume ...) --
    write("ck_not_checkpoint.safetensors", st(w))
    write("ck_other_version.safetensors", st(w, meta={"format": "cnn-checkpoint", "format_version": "99"}))
    write("ck_no_progress.safetensors", st(w, meta={"format": "cnn-checkpoint", "format_version": "1"}))
    # ck_truncated, ck_negative_epoch and ck_other_model are cut from a real
    # checkpoint by the test at run time (it depends on the optimiser's state).


if __name__ == "__main__":
    main()
