"""The projects' builders in tinyml_edu.models: static shapes only, so the int8 model holds no
dynamic-batch ops that the board's sketch would have to register."""

import numpy as np
import pytest

from tinyml_edu import models

DYNAMIC_SHAPE_OPS = {"SHAPE", "STRIDED_SLICE", "PACK"}  # what keras.layers.Reshape adds


@pytest.mark.slow
@pytest.mark.parametrize(("build", "input_shape"), [
    (lambda: models.mlp(26, (32, 16), 3, dropout=0.2), (26,)),
    (lambda: models.cnn1d_bn((128, 7), 3), (128, 7)),
    (lambda: models.cnn2d_bn((37, 40), 4), (37, 40)),
    (lambda: models.ds_cnn((49, 40), 12), (49, 40)),
    (lambda: models.ds_cnn((49, 40), 12, temporal=False, dw_kernel=3), (49, 40)),
    (lambda: models.dense_autoencoder(24), (24,)),
])
def test_a_proven_builder_converts_without_dynamic_shape_ops(build, input_shape):
    from tinyml_edu import profile, quantize, train

    train.set_seed(0)
    rng = np.random.default_rng(0)
    int8 = quantize.convert(build(), "int8", representative=rng.normal(size=(20, *input_shape)))
    ops = {op.name for op in profile.op_list(int8)}
    assert ops and not ops & DYNAMIC_SHAPE_OPS, ops


def test_the_mlp_puts_its_dropout_after_the_first_hidden_layer():
    pytest.importorskip("keras")
    names = [layer.name for layer in models.mlp(26, (32, 16), 3, name="ecg", dropout=0.2).layers]
    assert names == ["fc1", "drop", "fc2", "y"]
    assert "drop" not in [layer.name for layer in models.mlp(1, (16, 16), 1).layers]


@pytest.mark.slow
def test_the_plain_cnn2d_with_its_reshape_layer_does_have_them():
    """The check above can fail: ``cnn2d`` (lesson 4's starting point) keeps a Reshape layer."""
    from tinyml_edu import profile, quantize, train

    train.set_seed(0)
    rng = np.random.default_rng(0)
    int8 = quantize.convert(models.cnn2d((49, 40), 4), "int8",
                            representative=rng.normal(size=(20, 49, 40)))
    assert {op.name for op in profile.op_list(int8)} & DYNAMIC_SHAPE_OPS
