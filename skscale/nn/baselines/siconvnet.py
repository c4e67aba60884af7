"""SI-ConvNet: locally scale-invariant convolutions over an image pyramid.

Kanazawa, A., Sharma, A. and Jacobs, D. W. (2014). Locally Scale-Invariant
Convolutional Neural Networks. NeurIPS 2014 Workshop on Deep Learning
(arXiv:1412.5104).

Each layer rescales its input by every factor of a fixed set (an image pyramid),
convolves every copy with the *same* kernel, rescales the responses back to the input
grid and keeps, at every pixel and channel, the maximum over the factors. The maximum
makes the response locally invariant to the scale at which a pattern appears, within
the range the factors cover.

Two pyramids: ``"same"`` keeps every copy at the input's size (an upscaled copy is
cropped, a downscaled one zero-padded, both about the centre), as the SESN authors'
re-implementation that the paper's Table 5 follows: one ``H x W`` convolution per
factor. ``"full"`` convolves every copy at its whole rescaled size, at a cost that grows
with the sum of the squared factors.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from ...rescaling import rescale_about_centre
from ...utils.validation import Options, Real, Sequence
from ..blocks import SESN_LAYOUT, OddKernelConv, check_input_shape, mnist_blocks, reset_conv_parameters
from ..functional import correlate_same
from ..heads import mnist_head
from ..registry import register_architecture

__all__ = ["SIConv2d", "SIConvNet", "SESN_FACTORS", "PYRAMIDS"]

#: The rescaling factors of the SESN benchmark code for SI-ConvNet on MNIST-Scale
#: (about ``1.5 ** k`` for ``k = -3 .. 3``).
SESN_FACTORS = (0.3, 0.45, 0.67, 1.0, 1.49, 2.23, 3.33)

#: The image pyramids of :class:`SIConv2d`: copies kept at the input's size (the SESN
#: benchmark code's scheme) or convolved at their whole rescaled size.
PYRAMIDS = ("same", "full")

_MODE = Options(("bilinear", "bicubic", "nearest"))
_PYRAMID = Options(PYRAMIDS)


def _axis_matrix(length, factor, mode, antialias):
    """``(length, length)`` float64 matrix of the rescaling of one axis by ``factor`` about its centre.

    Row ``i`` holds the weights with which output position ``i`` reads the input, as
    :func:`~skscale.rescaling.rescale_about_centre` samples it (zeros outside the input),
    obtained by rescaling the unit impulses.
    """
    impulses = torch.eye(length, dtype=torch.float64).view(length, 1, length, 1)
    factors = [[factor, 1.0]] * length
    responses = rescale_about_centre(
        impulses, factors, interpolation=mode, padding="zeros", antialias=antialias
    )
    return responses[:, 0, :, 0].T


def _margin(profile):
    """How many positions at *both* ends of a 1-D profile are zero (the smaller end)."""
    nonzero = torch.nonzero(profile).flatten()
    if not len(nonzero):
        return 0
    return min(int(nonzero[0]), len(profile) - 1 - int(nonzero[-1]))


def _axis_plan(length, factor, mode, antialias, padding):
    """One axis of one factor of the ``"same"`` pyramid, cut to the positions that matter.

    Returns ``(rescale, back, conv_padding, read, write)``. ``back`` rescales
    the response by ``1 / factor`` onto the output positions ``write .. length - write``
    (the others stay zero: an upscaled copy's response shrinks into the centre) and reads
    only the ``n`` central response positions (all of them when ``factor >= 1``, about
    ``factor * length`` when shrinking). ``rescale`` rescales the input positions
    ``read .. length - read`` (an upscaled copy sees only the centre) onto the positions
    within ``padding`` of those ``n``, and a convolution with zero padding
    ``conv_padding`` on each side yields exactly the ``n`` positions of the "same"
    convolution of the whole copy; the zero rows at the ends of a shrunk copy are left to
    that padding (up to half the kernel), so a shrunk copy holds just its rescaled image.
    Every cut is symmetric about the centre (the rescalings are, up to rounding), so that
    one offset serves both sides.
    """
    rescale = _axis_matrix(length, factor, mode, antialias)
    back = _axis_matrix(length, 1.0 / factor, mode, antialias)
    start = _margin(back.abs().sum(dim=0))
    first = max(0, start - padding)
    rescale, back = rescale[first : length - first], back[:, start : length - start]
    conv_padding = padding - (start - first)
    # Rows of a shrunk copy that are zero at its ends: the convolution pads them itself.
    trim = min(_margin(rescale.abs().sum(dim=1)), padding - conv_padding)
    rescale = rescale[trim : len(rescale) - trim]
    read, write = _margin(rescale.abs().sum(dim=0)), _margin(back.abs().sum(dim=1))
    return (
        rescale[:, read : length - read],
        back[write : length - write],
        conv_padding + trim,
        read,
        write,
    )


@functools.lru_cache(maxsize=64)
def _same_pyramid(height, width, factors, mode, antialias, padding, dtype, device):
    """The matrices of the ``"same"`` pyramid, the factors grouped by the shapes of their plans.

    Returns ``(identity, groups)``: whether a factor is 1 (its copy is the input itself,
    convolved as it is), and one ``(rescale_rows, rescale_cols, back_rows, back_cols,
    conv_padding, read, write)`` per group of the other factors, the matrices stacked over
    the group's factors in ``dtype`` on ``device`` and ``read``, ``write`` the (rows,
    columns) margins of :func:`_axis_plan`. They are built outside inference mode, so that
    the cached matrices serve training as well.
    """
    groups = {}
    with torch.inference_mode(False):
        for factor in factors:
            if factor == 1.0:
                continue
            rows = _axis_plan(height, factor, mode, antialias, padding)
            cols = _axis_plan(width, factor, mode, antialias, padding)
            key = tuple(rows[0].shape + rows[1].shape + cols[0].shape + cols[1].shape) + rows[2:] + cols[2:]
            groups.setdefault(key, []).append((rows, cols))
        stacked = tuple(_stacked_group(members, dtype, device) for members in groups.values())
    return 1.0 in factors, stacked


def _stacked_group(members, dtype, device):
    """The ``(rows, cols)`` axis plans of factors whose plans share their shapes, stacked."""
    rows, cols = zip(*members)

    def stacked(plans, part):
        return torch.stack([plan[part] for plan in plans]).to(dtype=dtype, device=device)

    margins = tuple((rows[0][part], cols[0][part]) for part in (2, 3, 4))
    return (stacked(rows, 0), stacked(cols, 0), stacked(rows, 1), stacked(cols, 1), *margins)


def _correlate(x, weight, bias, padding):
    """``F.conv2d(x, weight, bias, padding=padding)`` (``padding``: rows, columns, each at
    most half the kernel, as :func:`_axis_plan` gives them) through
    :func:`~skscale.nn.functional.correlate_same`, which takes the FFT where that is
    cheaper: the "same" output cropped by the difference."""
    cut_rows, cut_cols = (weight.shape[-1] // 2 - side for side in padding)
    out = correlate_same(x, weight, impl="auto", bias=bias)
    return out[..., cut_rows : out.shape[-2] - cut_rows, cut_cols : out.shape[-1] - cut_cols]


class SIConv2d(OddKernelConv):
    """Locally scale-invariant convolution (Kanazawa et al., 2014): (B, C, H, W) -> (B, O, H, W).

    ``y = max_s R_{1/s}[ w * R_s[x] ]``: the input is rescaled about its centre by each
    factor ``s`` (``R_s``), convolved with one shared ``kernel_size x kernel_size`` kernel
    ("same" zero padding), rescaled back by ``1 / s`` to ``H x W``, and max-pooled over the
    factors. With factors that form a geometric sequence, rescaling the input by one of
    their ratios rescales the output and moves each response to a neighbouring factor, so
    the layer commutes with that rescaling up to the ends of the factor range and
    interpolation.

    ``pyramid="same"`` (the default) follows the SESN authors' re-implementation, which
    the paper's Table 5 reports: ``R_s`` keeps the ``H x W`` shape, cropping an upscaled
    copy and zero-padding a downscaled one about the centre, so each factor costs one
    ``H x W`` convolution. The rescalings are those of
    :func:`~skscale.rescaling.rescale_about_centre` (exact factors about the centre, zeros
    outside, its box filter when shrinking), applied as one small matrix per axis;
    what cannot change the result is not computed: response positions that the rescaling
    back never reads (the border of a downscaled copy's response), input positions an
    upscaled copy never sees and output positions its response never reaches (both outside
    the centre), the zero border of a downscaled copy (the convolution's own padding) and
    the rescalings of the factor 1.
    ``pyramid="full"`` resizes every copy to ``round(s H) x round(s W)`` and convolves it
    at that size, at a cost that grows with the sum of the squared factors (about 20
    convolutions' worth for ``SESN_FACTORS``).

    Simplifications: no stride (the layer keeps the spatial size; pool afterwards);
    downscaling is antialiased by default, which the original bilinear warps were not,
    and the rescalings sample pixel centres (``align_corners=False``), where the SESN code
    aligns corners.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int, default=7
        Odd kernel size.
    factors : sequence of float, default=SESN_FACTORS
        Rescaling factors of the pyramid (``1.0`` is the input itself).
    mode : {"bilinear", "bicubic", "nearest"}, default="bilinear"
        Interpolation of the rescaling (Kanazawa et al. use bilinear warps).
    antialias : bool, default=True
        Low-pass filter when shrinking (bilinear and bicubic only).
    bias : bool, default=True
    pyramid : {"same", "full"}, default="same"
        Every copy kept at the input's ``H x W`` (the SESN benchmark code's scheme) or
        convolved at its whole rescaled size.

    Attributes
    ----------
    weight : Parameter of shape (O, C, kernel_size, kernel_size)
    bias : Parameter of shape (O,) or None

    Examples
    --------
    >>> import torch
    >>> layer = SIConv2d(1, 4, kernel_size=5, factors=(0.5, 1.0, 2.0))
    >>> tuple(layer(torch.randn(2, 1, 28, 28)).shape)
    (2, 4, 28, 28)
    >>> SIConv2d(1, 4, pyramid="valid")
    Traceback (most recent call last):
    ...
    ValueError: pyramid must be one of 'same', 'full', got 'valid'.
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size=7,
        factors=SESN_FACTORS,
        *,
        mode="bilinear",
        antialias=True,
        bias=True,
        pyramid="same",
    ):
        super().__init__(in_channels, out_channels, kernel_size)
        self.factors = Sequence(Real(low=0, closed="neither")).check(factors, "factors")
        self.mode = _MODE.check(mode, "mode")
        self.antialias = bool(antialias)
        self.pyramid = _PYRAMID.check(pyramid, "pyramid")
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        """The initialisation of ``nn.Conv2d`` (Kaiming-uniform)."""
        reset_conv_parameters(self.weight, self.bias)

    def forward(self, x):
        check_input_shape(self, x, self.in_channels)
        responses = self._same_pyramid(x) if self.pyramid == "same" else self._full_pyramid(x)
        return torch.cat(responses).max(dim=0).values

    def _same_pyramid(self, x):
        """The responses ``(n, B, O, H, W)`` of each group of factors, every copy at most ``H x W``."""
        batch, channels, height, width = x.shape
        antialias = self.antialias and self.mode != "nearest"
        half = self.kernel_size // 2
        identity, groups = _same_pyramid(
            height, width, self.factors, self.mode, antialias, half, x.dtype, x.device
        )
        responses = [_correlate(x, self.weight, self.bias, (half, half))[None]] if identity else []
        for rescale_rows, rescale_cols, back_rows, back_cols, padding, read, write in groups:
            seen = x[..., read[0] : height - read[0], read[1] : width - read[1]]
            copies = torch.einsum("fih,bchw,fjw->fbcij", rescale_rows, seen, rescale_cols)
            copies = copies.reshape(-1, channels, *copies.shape[-2:])
            out = _correlate(copies, self.weight, self.bias, padding)
            out = out.view(len(back_rows), batch, -1, *out.shape[-2:])
            out = torch.einsum("fih,fbohw,fjw->fboij", back_rows, out, back_cols)
            responses.append(F.pad(out, (write[1], write[1], write[0], write[0])) if any(write) else out)
        return responses

    def _resize(self, x, size):
        if tuple(x.shape[-2:]) == size:
            return x
        shrinking = size[0] < x.shape[-2] or size[1] < x.shape[-1]
        if self.mode == "nearest":
            return F.interpolate(x, size=size, mode="nearest")
        return F.interpolate(
            x, size=size, mode=self.mode, align_corners=False, antialias=self.antialias and shrinking
        )

    def _full_pyramid(self, x):
        """The response ``(1, B, O, H, W)`` of each factor, each copy convolved at its whole size."""
        height, width = x.shape[-2:]
        responses = []
        for factor in self.factors:
            size = (max(1, round(height * factor)), max(1, round(width * factor)))
            out = correlate_same(self._resize(x, size), self.weight, impl="auto", bias=self.bias)
            responses.append(self._resize(out, (height, width))[None])
        return responses

    def extra_repr(self):
        return super().extra_repr() + (
            f", factors={self.factors}, mode={self.mode!r}, antialias={self.antialias}, "
            f"bias={self.bias is not None}, pyramid={self.pyramid!r}"
        )


@register_architecture("siconvnet")
class SIConvNet(nn.Module):
    """SI-ConvNet for MNIST-sized images (Kanazawa et al., 2014), as benchmarked by SESN.

    Three blocks of :class:`SIConv2d` (7 x 7 kernels, 32, 63 and 95 filters) -> 2 x 2
    max pooling -> ReLU -> batch norm, and the SESN head (2 x 2 max pooling, 256 units
    without bias, batch norm, ReLU, dropout, logits): the layout of
    :class:`~skscale.nn.models.PlainCNN` and **494,549** trainable parameters for 10
    classes on one channel, whatever the factors and the image size.

    Simplifications: Kanazawa et al. evaluate a smaller network on their own MNIST-Scale;
    this is the parameter-matched network of the SESN benchmark (Sosnovik et al., 2020),
    whose shape-preserving pyramid (``pyramid="same"``) it uses by default, with the layer
    simplifications listed in :class:`SIConv2d` and an adaptive last pooling (2 x 2 output
    for any image size).

    Parameters
    ----------
    n_classes : int
    in_channels : int, default=1
    factors : sequence of float, default=SESN_FACTORS
        Rescaling factors of every layer's pyramid.
    kernel_size : int, default=7
    mode : {"bilinear", "bicubic", "nearest"}, default="bilinear"
    antialias : bool, default=True
    widths, hidden, dropout
        As for :class:`~skscale.nn.models.PlainCNN`, whose layout this is.
    pyramid : {"same", "full"}, default="same"
        Every copy kept at the layer input's size, as the SESN benchmark code (one
        convolution per factor), or convolved at its whole rescaled size (see
        :class:`SIConv2d`).
    """

    def __init__(
        self,
        n_classes,
        in_channels=1,
        factors=SESN_FACTORS,
        kernel_size=7,
        mode="bilinear",
        antialias=True,
        widths=SESN_LAYOUT.widths,
        hidden=SESN_LAYOUT.hidden,
        dropout=SESN_LAYOUT.dropout,
        pyramid="same",
    ):
        super().__init__()

        def make_conv(channels, width):
            return SIConv2d(
                channels, width, kernel_size, factors, mode=mode, antialias=antialias, pyramid=pyramid
            )

        self.features = mnist_blocks(in_channels, widths, make_conv)
        self.head = mnist_head(self.features[-1].num_features, n_classes, hidden, dropout)

    def forward(self, x):
        return self.head(self.features(x))
