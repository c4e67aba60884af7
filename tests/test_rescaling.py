"""Tests of skscale.rescaling.rescale_about_centre, the resampler behind every rescaling."""

import numpy as np
import pytest
import torch

from skscale.rescaling import INTERPOLATIONS, PADDINGS, rescale_about_centre


def centred_square(side=32, half_width=4, channels=1):
    images = torch.zeros(1, channels, side, side, dtype=torch.float64)
    low, high = side // 2 - half_width, side // 2 + half_width
    images[..., low:high, low:high] = 1.0
    return images


def width_of(image):
    """Widest row of the object, in pixels above half its height."""
    return int((image > 0.5).sum(dim=-1).max())


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("padding", PADDINGS)
def test_identity_at_factor_one(interpolation, padding):
    images = torch.rand(3, 2, 17, 20, dtype=torch.float64)
    out = rescale_about_centre(images, 1.0, interpolation=interpolation, padding=padding)
    torch.testing.assert_close(out, images, atol=1e-6, rtol=0)


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("factor", [0.5, 1.5, 2.0])
def test_a_centred_object_scales_by_the_factor(interpolation, factor):
    square = centred_square()
    out = rescale_about_centre(square, factor, output_size=64, interpolation=interpolation)
    assert out.shape == (1, 1, 64, 64)
    assert width_of(out[0, 0]) == round(8 * factor)
    rows = torch.nonzero(out[0, 0].sum(dim=1) > 0.5).flatten().double()
    assert abs(float(rows.mean()) - 31.5) < 0.5  # still centred on the new canvas


def test_height_and_width_factors():
    out = rescale_about_centre(centred_square(), [[2.0, 0.5]], interpolation="bilinear")[0, 0]
    assert int((out > 0.5).sum(dim=0).max()) == 16  # tallest column
    assert int((out > 0.5).sum(dim=1).max()) == 4  # widest row


def test_each_padding_mode_fills_the_border_of_a_shrunk_image():
    ramp = torch.linspace(1.0, 2.0, 16, dtype=torch.float64).expand(1, 1, 16, 16).contiguous()
    zeros, border, reflection = (
        rescale_about_centre(ramp, 0.5, interpolation="bilinear", padding=padding)[0, 0]
        for padding in PADDINGS
    )
    assert zeros[0, 0] == 0.0 and zeros[8, 8] > 1.0
    assert border[:, 0].eq(1.0).all() and border[:, -1].eq(2.0).all()  # the edge pixels repeated
    assert reflection[:, 0].gt(1.0).all() and reflection[:, -1].lt(2.0).all()  # mirrored inwards
    inside = (slice(5, 11), slice(5, 11))
    torch.testing.assert_close(zeros[inside], border[inside])
    torch.testing.assert_close(border[inside], reflection[inside])


def test_interpolation_modes_differ_between_pixels():
    images = torch.rand(1, 1, 12, 12, dtype=torch.float64)
    outs = [rescale_about_centre(images, 1.7, interpolation=mode) for mode in INTERPOLATIONS]
    nearest = outs[INTERPOLATIONS.index("nearest")]
    assert set(np.unique(nearest.numpy())) <= set(np.unique(images.numpy()))
    for first in range(len(outs)):
        for second in range(first + 1, len(outs)):
            assert not torch.allclose(outs[first], outs[second])


def test_antialias_clip_channels_and_gradient():
    grating = torch.zeros(2, 3, 32, 32, dtype=torch.float64)
    grating[..., ::2] = 1.0
    aliased = rescale_about_centre(grating, 0.3)
    smooth = rescale_about_centre(grating, 0.3, antialias=True)
    assert smooth[..., 12:20, 12:20].std() < 0.3 * aliased[..., 12:20, 12:20].std()
    assert rescale_about_centre(grating, 1.3, clip=(0.0, 1.0)).min() >= 0.0
    torch.testing.assert_close(
        rescale_about_centre(grating[:, 0], 0.7), rescale_about_centre(grating, 0.7)[:, 0]
    )
    images = torch.rand(2, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    rescale_about_centre(images, [1.5, 0.5]).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(factors=0.0), "factors must be positive and finite"),
        (dict(factors=[1.0, 2.0, 3.0]), r"factors must be a number or an array of shape \(2,\) or \(2, 2\)"),
        (dict(factors=1.0, output_size=0), "output_size must be"),
        (dict(factors=1.0, interpolation="area"), "interpolation must be one of"),
        (dict(factors=1.0, padding="constant"), "padding must be one of"),
        (dict(factors=1.0, clip=(1.0, 0.0)), "clip"),
    ],
)
def test_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        rescale_about_centre(torch.zeros(2, 1, 4, 4), **kwargs)
    with pytest.raises(ValueError, match="floating-point torch.Tensor"):
        rescale_about_centre(np.zeros((2, 4, 4)), 1.0)
