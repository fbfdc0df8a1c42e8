"""Stage 3, models: small Keras model builders sized for microcontrollers.

Layers get short names on purpose: tensor names are stored in the ``.tflite`` file, and on a
3 KB model long auto-generated names cost hundreds of bytes of flash.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # keep `import tinyml_edu.models` free of TensorFlow until a builder runs
    import keras


def mlp(input_dim: int = 1, hidden: tuple[int, ...] = (16, 16), outputs: int = 1,
        name: str = "mlp") -> keras.Model:
    """A plain multilayer perceptron (the sine "hello world" uses 1 -> 16 -> 16 -> 1)."""
    import keras

    layers = [keras.Input((input_dim,), name="x")]
    layers += [keras.layers.Dense(units, activation="relu", name=f"fc{i + 1}")
               for i, units in enumerate(hidden)]
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


def ds_cnn(input_shape: tuple[int, int], num_classes: int, width: int = 32, blocks: int = 3,
           dropout: float = 0.1, name: str = "ds_cnn") -> keras.Model:
    """Depthwise-separable CNN for keyword spotting (the MLPerf Tiny KWS family, narrower).

    A strided first convolution shrinks the 49x40 spectrogram early, which is what keeps the
    TFLM arena small; each block is depthwise 3x3 then pointwise 1x1, both with batch norm
    (folded into the convolutions by the converter) and ReLU.
    """
    import keras

    x = inputs = keras.Input(input_shape, name="x")
    x = keras.layers.Reshape((*input_shape, 1), name="img")(x)
    x = keras.layers.Conv2D(width, (5, 3), strides=(2, 2), padding="same", use_bias=False,
                            name="conv0")(x)
    x = keras.layers.BatchNormalization(name="bn0")(x)
    x = keras.layers.ReLU(name="relu0")(x)
    for i in range(1, blocks + 1):
        x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"dw{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn_dw{i}")(x)
        x = keras.layers.ReLU(name=f"relu_dw{i}")(x)
        x = keras.layers.Conv2D(width, 1, use_bias=False, name=f"pw{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn_pw{i}")(x)
        x = keras.layers.ReLU(name=f"relu_pw{i}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="drop")(x)
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
