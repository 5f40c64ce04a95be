"""Minimal safetensors reader/writer for the tests (numpy only; the
safetensors package is not assumed)."""
import json
import struct

import numpy as np

_DT = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32,
       "U8": np.uint8, "F16": np.float16}
_NAME = {np.dtype(v).str: k for k, v in _DT.items()}


def save(path, tensors, metadata=None):
    """tensors: dict name -> numpy array (or torch tensor)."""
    header = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    blobs = []
    off = 0
    for name, arr in tensors.items():
        if hasattr(arr, "detach"):
            arr = arr.detach().cpu().numpy()
        # ascontiguousarray makes 0-d arrays 1-d; keep scalars scalar.
        arr = np.ascontiguousarray(arr).reshape(np.shape(arr))
        dt = _NAME[arr.dtype.str]
        b = arr.tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        arr = np.frombuffer(data[base + b:base + e], dtype=_DT[info["dtype"]])
        out[name] = arr.reshape(info["shape"]).copy()
    return out
