"""Stage 3, models: small Keras model builders sized for microcontrollers.

Layers get short names on purpose: tensor names are stored in the ``.tflite`` file, and on a
3 KB model long auto-generated names cost hundreds of bytes of flash.

The projects' proven builders (``mlp``, ``cnn1d_bn``, ``cnn2d_bn``, ``ds_cnn``,
``dense_autoencoder``) add a channel axis with ``keras.ops.expand_dims``, never with
``keras.layers.Reshape``: Reshape keeps the batch dimension dynamic, which costs SHAPE,
STRIDED_SLICE and PACK ops (and flash) in the converted model, ops the board's sketch would
have to register too. ``cnn1d`` and ``cnn2d`` are the plain versions the lessons start from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # keep `import tinyml_edu.models` free of TensorFlow until a builder runs
    import keras


def mlp(input_dim: int = 1, hidden: tuple[int, ...] = (16, 16), outputs: int = 1,
        name: str = "mlp", dropout: float = 0.0) -> keras.Model:
    """A plain multilayer perceptron (the sine "hello world" uses 1 -> 16 -> 16 -> 1).

    ``dropout``: the rate of a Dropout layer after the first, widest hidden layer (0: none);
    the ECG project uses 0.2 against its small training set."""
    import keras

    # Layers are made in model order: each one draws its initial-weight seed when it is made,
    # so the order is what makes a seeded build reproducible.
    layers = [keras.Input((input_dim,), name="x")]
    for i, units in enumerate(hidden):
        layers.append(keras.layers.Dense(units, activation="relu", name=f"fc{i + 1}"))
        if i == 0 and dropout:
            layers.append(keras.layers.Dropout(dropout, name="drop"))
    layers.append(keras.layers.Dense(outputs, activation=None if outputs == 1 else "softmax",
                                     name="y"))
    return keras.Sequential(layers, name=name)


def cnn1d(input_shape: tuple[int, int], num_classes: int, filters: tuple[int, ...] = (8, 16),
          kernel_size: int = 5, name: str = "cnn1d") -> keras.Model:
    """1-D convolutions over time for IMU windows (time, channels) and other sensor series."""
    import keras

    x = inputs = keras.Input(input_shape, name="x")
    for i, f in enumerate(filters):
        x = keras.layers.Conv1D(f, kernel_size, padding="same", activation="relu",
                                name=f"conv{i + 1}")(x)
        x = keras.layers.MaxPooling1D(2, name=f"pool{i + 1}")(x)
    x = keras.layers.GlobalAveragePooling1D(name="gap")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="y")(x)
    return keras.Model(inputs, outputs, name=name)


def cnn2d(input_shape: tuple[int, int], num_classes: int, filters: tuple[int, ...] = (8, 16),
          name: str = "cnn2d") -> keras.Model:
    """A tiny 2-D CNN over a spectrogram (frames, channels), like micro_speech's tiny_conv."""
    import keras

    x = inputs = keras.Input(input_shape, name="x")
    x = keras.layers.Reshape((*input_shape, 1), name="img")(x)
    for i, f in enumerate(filters):
        x = keras.layers.Conv2D(f, 3, strides=2, padding="same", activation="relu",
                                name=f"conv{i + 1}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="y")(x)
    return keras.Model(inputs, outputs, name=name)


def cnn1d_bn(input_shape: tuple[int, int], num_classes: int,
             filters: tuple[int, ...] = (8, 16, 16), kernel_size: int = 5,
             name: str = "wand") -> keras.Model:
    """``cnn1d`` with batch norm (the gestures project's magic wand): convolution (no bias) ->
    batch norm -> ReLU -> max-pool 2 per filter count; global average; softmax.

    Batch norm trains faster and steadier than the plain ``cnn1d``, and costs nothing on the
    board: the converter folds it into the convolutions. 8 filters in the first layer keep the
    TFLM arena of a 128 x 7 window under 8 KB."""
    import keras

    x = inputs = keras.Input(input_shape, name="x")
    for i, f in enumerate(filters, start=1):
        x = keras.layers.Conv1D(f, kernel_size, padding="same", use_bias=False,
                                name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
        x = keras.layers.MaxPooling1D(2, name=f"pool{i}")(x)
    x = keras.layers.GlobalAveragePooling1D(name="gap")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="y")(x)
    return keras.Model(inputs, outputs, name=name)


def cnn2d_bn(input_shape: tuple[int, int], num_classes: int,
             filters: tuple[int, ...] = (8, 16, 24), dropout: float = 0.1,
             name: str = "rumbles") -> keras.Model:
    """A small 2-D CNN over a spectrogram (frames, channels), the elephant rumbles project's:
    strided 3x3 convolutions (no bias) with batch norm and ReLU, one per filter count; global
    average over time and frequency (a pattern counts wherever it sits); dropout; softmax."""
    import keras

    x = inputs = keras.Input(input_shape, name="x")
    x = keras.ops.expand_dims(x, -1)  # static, unlike keras.layers.Reshape (module docstring)
    for i, f in enumerate(filters, start=1):
        x = keras.layers.Conv2D(f, 3, strides=2, padding="same", use_bias=False,
                                name=f"c{i}")(x)
        x = keras.layers.BatchNormalization(name=f"n{i}")(x)
        x = keras.layers.ReLU(name=f"r{i}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="g")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="o")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="y")(x)
    return keras.Model(inputs, outputs, name=name)


def ds_cnn(input_shape: tuple[int, int], num_classes: int,
           conv0: tuple[int, tuple[int, int], tuple[int, int]] = (32, (3, 4), (2, 2)),
           width: int = 40, blocks: int = 2,
           block_strides: tuple[tuple[int, int], ...] = ((2, 2), (1, 1)), dw_kernel: int = 15,
           dropout: float = 0.2, temporal: bool = True, name: str = "k") -> keras.Model:
    """Depthwise-separable CNN for keyword spotting (the MLPerf Tiny KWS family, narrower),
    the kws project's.

    ``conv0`` = (filters, kernel, strides) of a strided first convolution, then ``blocks``
    blocks of depthwise (``block_strides[i]``) then pointwise (``width`` filters), each with
    batch norm (folded into the convolutions by the converter) and ReLU; global average;
    dropout; softmax.

    ``temporal``: time is the only spatial axis and the mel channels are input channels (the
    kernels' frequency extent and strides are dropped, and the depthwise kernel is
    ``dw_kernel`` frames long), which keeps activations, and so the TFLM arena, small.
    Otherwise a 2-D DS-CNN over the spectrogram with ``dw_kernel`` x ``dw_kernel`` depthwise
    kernels.
    """
    import keras

    x = inputs = keras.Input(input_shape, name="x")
    filters, kernel, strides = conv0
    if temporal:  # a unit "width" axis: the mel channels stay channels
        x = keras.ops.expand_dims(x, 2)
        kernel, strides = (kernel[0], 1), (strides[0], 1)
    else:
        x = keras.ops.expand_dims(x, -1)
    x = keras.layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False,
                            name="c")(x)
    x = keras.layers.BatchNormalization(name="n")(x)
    x = keras.layers.ReLU(name="r")(x)
    for i in range(1, blocks + 1):
        dw_strides = block_strides[i - 1]
        if temporal:
            # The width axis has size 1, so any stride along it gives the same output. Equal
            # strides, because TensorFlow's default CPU DepthwiseConv2D kernel refuses unequal
            # ones (only oneDNN's accept them, and most laptops run without oneDNN).
            dw_strides = (dw_strides[0], dw_strides[0])
        x = keras.layers.DepthwiseConv2D((dw_kernel, 1) if temporal else dw_kernel,
                                         strides=dw_strides, padding="same", use_bias=False,
                                         name=f"d{i}")(x)
        x = keras.layers.BatchNormalization(name=f"m{i}")(x)
        x = keras.layers.ReLU(name=f"s{i}")(x)
        x = keras.layers.Conv2D(width, 1, use_bias=False, name=f"p{i}")(x)
        x = keras.layers.BatchNormalization(name=f"n{i}")(x)
        x = keras.layers.ReLU(name=f"r{i}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="g")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="o")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="y")(x)
    return keras.Model(inputs, outputs, name=name)


def dense_autoencoder(input_dim: int, hidden: tuple[int, ...] = (32, 8),
                      name: str = "autoencoder") -> keras.Model:
    """A small fully connected autoencoder for anomaly detection (reconstruction error)."""
    import keras

    x = inputs = keras.Input((input_dim,), name="x")
    sizes = list(hidden) + list(reversed(hidden[:-1]))
    for i, units in enumerate(sizes):
        x = keras.layers.Dense(units, activation="relu", name=f"fc{i + 1}")(x)
    outputs = keras.layers.Dense(input_dim, name="y")(x)
    return keras.Model(inputs, outputs, name=name)
