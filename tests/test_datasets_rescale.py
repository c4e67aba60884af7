"""Tests of skscale.datasets.rescale_tensor (rescale_images for torch batches)."""

import numpy as np
import pytest
import torch

from skscale.datasets import rescale_images, rescale_tensor


def test_rescale_tensor_matches_rescale_images_per_channel():
    batch = torch.rand(3, 2, 28, 28, generator=torch.Generator().manual_seed(0))
    factors = torch.tensor([0.5, 1.0, 1.7])
    out = rescale_tensor(batch, factors, output_size=(40, 36), clip=(0.0, 1.0), antialias=True)
    assert out.shape == (3, 2, 40, 36) and out.dtype == torch.float32
    for channel in range(2):
        expected = rescale_images(
            batch[:, channel].numpy(), factors.numpy(), output_size=(40, 36), antialias=True
        )
        np.testing.assert_array_equal(out[:, channel].numpy(), expected)
    assert not out.requires_grad


def test_rescale_tensor_keeps_standardised_values_and_dtype():
    # Standardised images hold negative values: without clip they survive, the interior
    # of a magnified constant image keeps its value exactly.
    batch = torch.full((2, 20, 20), -1.5, dtype=torch.float64)
    out = rescale_tensor(batch, 2.0)
    assert out.dtype == torch.float64 and out.shape == (2, 20, 20)
    torch.testing.assert_close(out[:, 4:16, 4:16], torch.full((2, 12, 12), -1.5, dtype=torch.float64))
    assert rescale_tensor(batch, 2.0, clip=(0, 1)).min() == 0.0
    # Shrunk images are padded with zeros.
    assert rescale_tensor(batch, 0.5)[:, :3].abs().max() == 0.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_rescale_tensor_on_cuda():
    batch = torch.rand(4, 1, 28, 28)
    out = rescale_tensor(batch.cuda(), [0.5, 1.0, 1.5, 2.0], output_size=56)
    assert out.device.type == "cuda"
    torch.testing.assert_close(
        out.cpu(), rescale_tensor(batch, [0.5, 1.0, 1.5, 2.0], output_size=56), atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize(
    "images, kwargs, match",
    [
        (np.zeros((2, 28, 28)), {}, "torch.Tensor"),
        (torch.zeros(2, 28, 28, dtype=torch.int64), {}, "floating-point"),
        (torch.zeros(28, 28), {}, "shape"),
        (torch.zeros(2, 28, 28), {"factors": [1.0, 0.0]}, "factors"),
        (torch.zeros(2, 28, 28), {"output_size": (0, 5)}, "output_size"),
        (torch.zeros(2, 28, 28), {"clip": (1.0, 0.0)}, "clip"),
        (torch.zeros(2, 28, 28), {"antialias": "no"}, "antialias"),
    ],
)
def test_rescale_tensor_bad_arguments(images, kwargs, match):
    kwargs = {"factors": 1.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        rescale_tensor(images, **kwargs)
