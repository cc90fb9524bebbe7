#!/usr/bin/python3
"""Write full_model_k2.h5: a Keras 2 full-model HDF5 file (what model.save("m.h5")
writes with TF 2.x / Keras 2) for the model of func_residual_k2.json, with h5py
only (no TensorFlow here). Layout, as keras/saving/legacy/hdf5_format.py writes it:
  root attrs   keras_version, backend, model_config (the to_json() text, bytes)
  /model_weights  attrs layer_names, backend, keras_version
  /model_weights/<layer>  attr weight_names ["<layer>/<w>:0", ...]
  /model_weights/<layer>/<layer>/<w>:0  float32 in Keras' layout
Every weight is filled with a known pattern (value = 0.001 * (index + 1) within
its tensor, BatchNorm moving_variance 1 + that) so tests can check what was
loaded. Usage: make_full_model_h5.py [OUT.h5]  (committed result: full_model_k2.h5)"""
import json
import os
import sys

import h5py
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "full_model_k2.h5")
with open(os.path.join(here, "func_residual_k2.json")) as f:
    config = json.load(f)

# weight shapes of each layer with weights, in Keras' order
weights = {
    "conv2d": [("kernel", (3, 3, 3, 8)), ("bias", (8,))],
    "batch_normalization": [("gamma", (8,)), ("beta", (8,)), ("moving_mean", (8,)), ("moving_variance", (8,))],
    "conv2d_1": [("kernel", (3, 3, 8, 8))],
    "batch_normalization_1": [("gamma", (8,)), ("beta", (8,)), ("moving_mean", (8,)), ("moving_variance", (8,))],
    "depthwise_conv2d": [("depthwise_kernel", (3, 3, 8, 1))],
    "dense": [("kernel", (8, 3)), ("bias", (3,))],
}
names = [layer["config"]["name"] for layer in config["config"]["layers"]]

with h5py.File(out, "w") as f:
    f.attrs["keras_version"] = b"2.13.1"
    f.attrs["backend"] = b"tensorflow"
    f.attrs["model_config"] = json.dumps(config).encode("utf8")
    g = f.create_group("model_weights")
    g.attrs["layer_names"] = np.array([n.encode() for n in names])
    g.attrs["backend"] = b"tensorflow"
    g.attrs["keras_version"] = b"2.13.1"
    for n in names:
        lg = g.create_group(n)
        ws = weights.get(n, [])
        lg.attrs["weight_names"] = np.array([f"{n}/{w}:0".encode() for w, _ in ws])
        if not ws:
            continue
        inner = lg.create_group(n)
        for w, shape in ws:
            v = 0.001 * (np.arange(int(np.prod(shape)), dtype=np.float32) + 1)
            if w == "moving_variance":
                v = v + 1.0
            inner.create_dataset(f"{w}:0", data=v.reshape(shape).astype(np.float32))
print(out)
