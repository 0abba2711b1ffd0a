"""Conv2D, MaxPool2D and Flatten layers: shapes, gradients, Sequential and save/load."""

import numpy as np
import pytest

from numbanet.nn import Dense, ReLU, Sequential
from numbanet.nn.conv import Conv2D, Flatten, MaxPool2D


def _built(layer, dtype=np.float64, seed=0):
    layer.build(dtype, np.random.default_rng(seed))
    return layer


def test_output_shapes_chain_like_keras():
    assert Conv2D(1, 32, 3).output_shape((28, 28, 1)) == (26, 26, 32)
    assert Conv2D(32, 64, (3, 3), padding="same").output_shape((13, 13, 32)) == (13, 13, 64)
    assert Conv2D(3, 8, 2, stride=2).output_shape((9, 9, 3)) == (4, 4, 8)
    assert MaxPool2D(2).output_shape((11, 11, 64)) == (5, 5, 64)
    assert Flatten().output_shape((5, 5, 64)) == (1600,)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Conv2D(0, 4, 3), r"`in_channels` must be a positive integer"),
        (lambda: Conv2D(1, 4, (3, 3, 3)), r"`kernel_size` must be an int or a pair of ints"),
        (lambda: Conv2D(1, 4, 3, stride=2, padding="same"), r"padding='same' requires stride=1"),
        (lambda: Conv2D(1, 4, 3, padding="full"), r"`padding` must be 'valid' or 'same'"),
        (lambda: Conv2D(2, 4, 3, input_shape=(28, 28, 1)), r"needs images of per-sample shape \(H, W, 2\)"),
        (lambda: MaxPool2D(0), r"`pool_size` must be a positive integer"),
        (lambda: MaxPool2D(3).output_shape((2, 8, 1)), r"needs images of at least 3x3"),
    ],
)
def test_bad_arguments_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_conv2d_layer_gradients_by_central_differences():
    rng = np.random.default_rng(1)
    layer = _built(Conv2D(2, 3, (3, 2)))
    x = rng.standard_normal((2, 6, 5, 2))
    g = rng.standard_normal((2, 4, 4, 3))
    layer.forward(x, training=True)
    dx = layer.backward(g).copy()

    def numeric(array, h=1e-5):
        grad = np.empty_like(array)
        for i in np.ndindex(array.shape):
            saved = array[i]
            array[i] = saved + h
            up = np.sum(layer.forward(x, training=True) * g)
            array[i] = saved - h
            down = np.sum(layer.forward(x, training=True) * g)
            array[i] = saved
            grad[i] = (up - down) / (2 * h)
        return grad

    np.testing.assert_allclose(layer.grads["kernel"], numeric(layer.params["kernel"]), rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(layer.grads["bias"], numeric(layer.params["bias"]), rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(dx, numeric(x), rtol=1e-7, atol=1e-8)


def test_maxpool_and_flatten_route_gradients_back():
    x = np.arange(2 * 5 * 4 * 3, dtype=np.float64).reshape(2, 5, 4, 3)
    pool, flatten = _built(MaxPool2D(2)), _built(Flatten())
    y = flatten.forward(pool.forward(x, training=True), training=True)
    assert y.shape == (2, 12)
    assert np.shares_memory(y, pool.forward(x, training=True))
    dx = pool.backward(flatten.backward(np.ones_like(y)))
    expected = np.zeros_like(x)
    expected[:, 1:4:2, 1::2, :] = 1  # the bottom-right of each window is its maximum
    np.testing.assert_array_equal(dx, expected)


def test_convnet_in_sequential_trains_and_round_trips(tmp_path):
    model = Sequential(
        [
            Conv2D(1, 4, 3, input_shape=(8, 8, 1)),
            ReLU(),
            MaxPool2D(2),
            Conv2D(4, 6, 2, padding="same"),
            ReLU(),
            Flatten(),
            Dense(54, 3),
        ],
        dtype="float32",
        seed=0,
    )
    assert model.layers[0].needs_input_grad is False
    x = np.random.default_rng(2).random((5, 64)).astype(np.float32)
    logits = model.forward(x.reshape(5, 8, 8, 1), training=True).copy()
    assert logits.shape == (5, 3) and np.all(np.isfinite(logits))
    model.backward(np.ones_like(logits) / 5)
    assert all(np.any(grad != 0) for grad in model.grads)
    model.save(tmp_path / "convnet.npz")
    loaded = Sequential.load(tmp_path / "convnet.npz")
    assert repr(loaded.layers[0]) == repr(model.layers[0])
    np.testing.assert_array_equal(loaded.forward(x.reshape(5, 8, 8, 1)), model.forward(x.reshape(5, 8, 8, 1)))
