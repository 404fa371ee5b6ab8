#!/usr/bin/python3
"""Reads a safetensors file by the format's specification alone (8-byte little-endian header size,
JSON header, raw little-endian data) and checks the sample that write_sample.cpp wrote."""
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "BOOL": np.bool_}

with open(sys.argv[1], "rb") as f:
    data = f.read()
(n,) = struct.unpack("<Q", data[:8])
header = json.loads(data[8:8 + n])
body = data[8 + n:]
tensors = {}
for name, entry in header.items():
    if name == "__metadata__":
        continue
    begin, end = entry["data_offsets"]
    tensors[name] = np.frombuffer(body[begin:end], dtype=DTYPES[entry["dtype"]]).reshape(entry["shape"])

assert header["__metadata__"] == {"format": "ctxpool-test"}, header["__metadata__"]
assert np.array_equal(tensors["weight"], np.arange(6, dtype=np.float32).reshape(2, 3))
assert tensors["bias"].dtype == np.float64 and np.array_equal(tensors["bias"], [0.5, -0.25])
assert np.array_equal(tensors["step"], [0, 1, 2])
assert np.array_equal(tensors["mask"], [False, False, True, True])
print("safetensors file read by an independent reader: ok")
