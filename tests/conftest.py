import numpy as np
import pytest
import torch

from skscale.basis import hermite_basis


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


def smooth_noise(batch, size, sigma=1.0, channels=1, seed=0):
    """White noise blurred by a Gaussian of ``sigma`` pixels: smooth enough to rescale."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(batch, channels, size, size, generator=generator, dtype=torch.float64)
    gaussian = hermite_basis(torch.tensor([sigma], dtype=torch.float64), 2 * int(3 * sigma) + 1, 0)[0]
    kernel = gaussian.expand(channels, 1, *gaussian.shape[-2:])
    return torch.nn.functional.conv2d(noise, kernel, padding=kernel.shape[-1] // 2, groups=channels).float()
