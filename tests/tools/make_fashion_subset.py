#!/usr/bin/env python3
"""Makes data/fashion-mnist-subset/ from Debian's dataset-fashion-mnist files.

Keeps the first 2000 training and the first 500 test images with their
labels, as gzipped IDX files under the original names, so the subset loads
exactly as the full set does. The gzip streams carry no time stamp or file
name, so running the script again gives the same bytes.

    python3 tests/tools/make_fashion_subset.py [source_dir] [output_dir]
"""
import gzip
import os
import struct
import sys

SPLITS = (("train", 2000), ("t10k", 500))


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    if data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        sys.exit("%s: not an unsigned-byte IDX file" % path)
    ndim = data[3]
    dims = list(struct.unpack(">%dI" % ndim, data[4:4 + 4 * ndim]))
    body = data[4 + 4 * ndim:]
    per = 1
    for d in dims[1:]:
        per *= d
    if len(body) != dims[0] * per:
        sys.exit("%s: %d data bytes, header declares %d" % (path, len(body), dims[0] * per))
    return dims, per, body


def write_idx(path, dims, body):
    header = bytes([0, 0, 0x08, len(dims)]) + struct.pack(">%dI" % len(dims), *dims)
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as f:
            f.write(header + body)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    src = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", "..", "data",
                                                             "fashion-mnist-subset")
    os.makedirs(out, exist_ok=True)
    for prefix, count in SPLITS:
        for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
            name = "%s-%s.gz" % (prefix, kind)
            dims, per, body = read_idx(os.path.join(src, name))
            if dims[0] < count:
                sys.exit("%s: only %d entries, %d wanted" % (name, dims[0], count))
            write_idx(os.path.join(out, name), [count] + dims[1:], body[:count * per])
            print("%s: %d of %d" % (name, count, dims[0]))


if __name__ == "__main__":
    main()
