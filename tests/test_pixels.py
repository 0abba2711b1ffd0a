"""gather_pixels: uint8 images gathered as floats p / 255, correctly rounded."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import assert_bitwise_equal, float64_instructions
from numbanet import gather_pixels
from numbanet.kernels import pixels as kernels
from numbanet.ops import pixels as pixel_ops


def divided(images, dtype):
    """numpy's correctly rounded p / 255 in ``dtype``."""
    return np.divide(images.astype(dtype), dtype(255))


def test_every_pixel_value_is_the_correctly_rounded_quotient(dtype):
    x = np.arange(256, dtype=np.uint8).reshape(2, 128)
    y = gather_pixels(x, [1, 0], dtype=dtype)
    assert y.dtype == dtype
    assert_bitwise_equal(y, divided(x[[1, 0]], dtype))
    assert y[1, 0] == 0 and y[0, 127] == 1  # 0 and 255 exactly
    # float64 p / 255 is within half an ulp of p / 255; float32 within half a float32 ulp of it.
    exact = np.arange(256) / 255
    assert np.all(np.abs(gather_pixels(x, [0, 1], dtype=dtype).ravel() - exact) <= np.spacing(dtype(1)) / 2)


@pytest.mark.parametrize("image_shape", [(784,), (28, 28), (28, 28, 1), (3, 2)])
def test_gathers_the_indexed_images_in_order(dtype, image_shape):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (50,) + image_shape, dtype=np.uint8)
    index = rng.integers(0, 50, 37)
    index[:3] = [49, 0, 49]  # the last image, the first, a repeat
    out = np.empty((37,) + image_shape, dtype)
    assert gather_pixels(x, index, out=out) is out
    assert_bitwise_equal(out, divided(x[index], dtype))
    reference = np.empty((37, int(np.prod(image_shape))), dtype)
    kernels.gather_pixels_reference(x.reshape(50, -1), index, reference)
    assert_bitwise_equal(out.reshape(37, -1), reference)


def test_a_batch_past_the_parallel_threshold_matches_numpy(dtype):
    # 90 images of 784 values: three tasks of 32 images, the last one short.
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (200, 784), dtype=np.uint8)
    index = rng.integers(0, 200, 90)
    assert index.shape[0] * 784 >= pixel_ops.PARALLEL_MIN_SIZE
    assert index.shape[0] % kernels.ROWS_PER_TASK
    assert_bitwise_equal(gather_pixels(x, index, dtype=dtype), divided(x[index], dtype))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 9), d=st.integers(1, 130), picks=st.lists(st.integers(0, 8), max_size=12), seed=st.integers(0, 99))
def test_any_shape_and_index_list_matches_numpy(n, d, picks, seed):
    x = np.random.default_rng(seed).integers(0, 256, (n, d), dtype=np.uint8)
    index = np.array([p % n for p in picks], dtype=np.int64)
    assert_bitwise_equal(gather_pixels(x, index), divided(x[index], np.float32))


def test_any_integer_index_dtype_and_an_empty_index():
    x = np.full((4, 3), 51, np.uint8)
    for index in (np.array([3, 1], np.uint8), np.array([3, 1], np.int32), [3, 1]):
        assert_bitwise_equal(gather_pixels(x, index), np.full((2, 3), np.float32(0.2)))
    assert gather_pixels(x, np.array([], np.intp)).shape == (0, 3)


def test_bad_arguments():
    x = np.zeros((4, 3), np.uint8)
    with pytest.raises(TypeError, match="`x` must be a uint8 numpy array"):
        gather_pixels(x.astype(np.float32), [0])
    with pytest.raises(TypeError, match="`x` must be a uint8 numpy array"):
        gather_pixels(x.tolist(), [0])
    with pytest.raises(ValueError, match="`x` must be C-contiguous"):
        gather_pixels(np.zeros((4, 6), np.uint8)[:, ::2], [0])
    with pytest.raises(ValueError, match="`x` must be C-contiguous with shape"):
        gather_pixels(np.zeros(4, np.uint8), [0])
    with pytest.raises(ValueError, match="`index` must be 1-D"):
        gather_pixels(x, [[0]])
    for bad in ([4], [-1], [0, 2, 7]):
        with pytest.raises(ValueError, match=r"`index` must lie in \[0, 4\)"):
            gather_pixels(x, np.array(bad))
    with pytest.raises(TypeError, match="`index` must be integers"):
        gather_pixels(x, [0.0])
    with pytest.raises(TypeError, match="float32 or float64"):
        gather_pixels(x, [0], dtype=np.float16)
    with pytest.raises(TypeError, match="float32 or float64"):
        gather_pixels(x, [0], out=np.empty((1, 3), np.int32))
    with pytest.raises(TypeError, match="`out` must be a numpy array"):
        gather_pixels(x, [0], out=[[0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="`out` must have shape"):
        gather_pixels(x, [0, 1], out=np.empty((1, 3), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        gather_pixels(x, [0], out=np.empty((1, 6), np.float32)[:, ::2])


@pytest.mark.filterwarnings("ignore:Inspection disabled for cached code")
def test_float32_kernel_stays_in_float32():
    x = np.zeros((3, 4), np.uint8)
    assert float64_instructions(kernels.gather_pixels, x, np.zeros(2, np.intp), np.empty((2, 4), np.float32)) == []
