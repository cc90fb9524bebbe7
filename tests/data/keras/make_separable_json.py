#!/usr/bin/env python3
"""Write separable_k2.json and separable_k3.json: one Functional model using
DepthwiseConv2D's and SeparableConv2D's options (kernel shapes, strides,
dilation, depth_multiplier, activations, use_bias), in the Keras 2 (2.13) and
Keras 3 forms of model.to_json(), with the arguments each version writes for
these layers (Keras' get_config as documented; no Keras ran here). One layer
per line, so tests can edit an argument with a text replacement.

    (16, 16, 3) -> Conv2D(8, 3, strides 2, same, relu)                      224
    -> DepthwiseConv2D((3, 5), depth_multiplier 2, same, dilation (2, 1),
                       relu6)                                   (8, 8, 16)  256
    -> SeparableConv2D(12, 3, depth_multiplier 2, valid, swish)  (6, 6, 12)  684
    -> BatchNormalization                                                    48
    -> SeparableConv2D(16, (1, 3), strides 2, same, no bias)    (3, 3, 16)  228
    -> GlobalAveragePooling2D -> Dense(3, softmax)                           51
    total 1,491 (1,467 trainable, 24 non-trainable)
Run from this directory with /usr/bin/python3."""
import json

GLOROT = ("GlorotUniform", {"seed": None})
ZEROS = ("Zeros", {})
ONES = ("Ones", {})

LAYERS = [  # (class, name, config without name/trainable/dtype, input)
    ("Conv2D", "conv2d", dict(filters=8, kernel_size=[3, 3], strides=[2, 2], padding="same",
                              data_format="channels_last", dilation_rate=[1, 1], groups=1, activation="relu",
                              use_bias=True, kernel_initializer=GLOROT, bias_initializer=ZEROS,
                              kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                              kernel_constraint=None, bias_constraint=None), "input_1"),
    ("DepthwiseConv2D", "depthwise_conv2d",
     dict(kernel_size=[3, 5], strides=[1, 1], padding="same", data_format="channels_last", dilation_rate=[2, 1],
          groups=1, activation="relu6", use_bias=True, bias_initializer=ZEROS, bias_regularizer=None,
          activity_regularizer=None, bias_constraint=None, depth_multiplier=2, depthwise_initializer=GLOROT,
          depthwise_regularizer=None, depthwise_constraint=None), "conv2d"),
    ("SeparableConv2D", "separable_conv2d",
     dict(filters=12, kernel_size=[3, 3], strides=[1, 1], padding="valid", data_format="channels_last",
          dilation_rate=[1, 1], activation="swish", use_bias=True, depth_multiplier=2,
          depthwise_initializer=GLOROT, pointwise_initializer=GLOROT, bias_initializer=ZEROS,
          depthwise_regularizer=None, pointwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
          depthwise_constraint=None, pointwise_constraint=None, bias_constraint=None), "depthwise_conv2d"),
    ("BatchNormalization", "batch_normalization",
     dict(axis=[3], momentum=0.99, epsilon=0.001, center=True, scale=True, beta_initializer=ZEROS,
          gamma_initializer=ONES, moving_mean_initializer=ZEROS, moving_variance_initializer=ONES,
          beta_regularizer=None, gamma_regularizer=None, beta_constraint=None, gamma_constraint=None),
     "separable_conv2d"),
    ("SeparableConv2D", "separable_conv2d_1",
     dict(filters=16, kernel_size=[1, 3], strides=[2, 2], padding="same", data_format="channels_last",
          dilation_rate=[1, 1], activation="linear", use_bias=False, depth_multiplier=1,
          depthwise_initializer=GLOROT, pointwise_initializer=("HeNormal", {"seed": None}), bias_initializer=ZEROS,
          depthwise_regularizer=None, pointwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
          depthwise_constraint=None, pointwise_constraint=None, bias_constraint=None), "batch_normalization"),
    ("GlobalAveragePooling2D", "global_average_pooling2d", dict(data_format="channels_last", keepdims=False),
     "separable_conv2d_1"),
    ("Dense", "dense", dict(units=3, activation="softmax", use_bias=True, kernel_initializer=GLOROT,
                            bias_initializer=ZEROS, kernel_regularizer=None, bias_regularizer=None,
                            activity_regularizer=None, kernel_constraint=None, bias_constraint=None),
     "global_average_pooling2d"),
]


def init(v, k3):
    """an initializer tuple in the version's form"""
    if isinstance(v, tuple):
        d = {"class_name": v[0], "config": v[1]}
        if k3:
            d = {"module": "keras.initializers", "class_name": v[0], "config": v[1], "registered_name": None}
        return d
    return v


def entry(cls, name, cfg, inp, k3):
    c = {"name": name, "trainable": True}
    c["dtype"] = ({"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"},
                   "registered_name": None} if k3 else "float32")
    if k3 and cls == "BatchNormalization":
        cfg = dict(cfg, axis=-1)
    c.update({k: init(v, k3) for k, v in cfg.items()})
    if k3:
        hist = {"class_name": "__keras_tensor__",
                "config": {"shape": None, "dtype": "float32", "keras_history": [inp, 0, 0]}}
        return {"module": "keras.layers", "class_name": cls, "config": c, "registered_name": None,
                "build_config": {"input_shape": None}, "name": name,
                "inbound_nodes": [{"args": [hist], "kwargs": {}}]}
    return {"class_name": cls, "config": c, "name": name, "inbound_nodes": [[[inp, 0, 0, {}]]]}


def write(path, k3):
    if k3:
        inp = {"module": "keras.layers", "class_name": "InputLayer",
               "config": {"batch_shape": [None, 16, 16, 3], "dtype": "float32", "sparse": False, "name": "input_1"},
               "registered_name": None, "name": "input_1", "inbound_nodes": []}
    else:
        inp = {"class_name": "InputLayer",
               "config": {"batch_input_shape": [None, 16, 16, 3], "dtype": "float32", "sparse": False,
                          "ragged": False, "name": "input_1"}, "name": "input_1", "inbound_nodes": []}
    layers = [inp] + [entry(c, n, cfg, i, k3) for c, n, cfg, i in LAYERS]
    head = {"class_name": "Functional",
            "config": {"name": "separable_k3" if k3 else "separable_k2", "trainable": True,
                       "input_layers": [["input_1", 0, 0]], "output_layers": [["dense", 0, 0]], "layers": None}}
    if k3:
        head["module"] = "keras.src.models.functional"
        head["registered_name"] = "Functional"
    tail = {"keras_version": "3.3.3" if k3 else "2.13.1", "backend": "tensorflow"}
    text = json.dumps(head)
    text = text.replace('"layers": null', '"layers": [\n' + ",\n".join(" " + json.dumps(l) for l in layers) + "\n]")
    text = text[:-1] + ", " + json.dumps(tail)[1:]
    json.loads(text)
    with open(path, "w") as f:
        f.write(text + "\n")


write("separable_k2.json", False)
write("separable_k3.json", True)
