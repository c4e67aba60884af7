"""SEVF: scale-equivariant convolutions whose output is a vector field.

Marcos, D., Kellenberger, B., Lobry, S. and Tuia, D. (2018). Scale equivariance in CNNs
with vector fields. ICML/FAIM 2018 Workshop (arXiv:1807.11783).

A layer correlates its input, rescaled by every factor of a geometric set, with one
kernel and keeps at every pixel the largest response *and* the factor that gave it, as a
2-D vector: its length is the rectified maximum over the factors, its angle encodes the
winning factor (linear in its logarithm). Rescaling the input by a ratio of the set
moves the winning factor to a neighbouring one, so the angle turns by a fixed step while
the length (the feature the classifier reads) stays. Deeper layers read vector fields:
the kernel is a vector field too, rotated by each factor's angle, so that the layer
responds to the *relative* scales of its input.

Vector fields are tensors of shape (B, C, 2, H, W) (the two components on axis 2).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...utils.validation import Integer, Real, Sequence
from ..blocks import SESN_LAYOUT, OddKernelConv, check_input_shape, reset_conv_parameters
from ..functional import correlate_same
from ..heads import mnist_head
from ..registry import register_architecture

__all__ = [
    "SEVF_FACTORS",
    "SEVF_ANGLES",
    "scale_vector_field",
    "vector_magnitude",
    "ScaleVectorConv2d",
    "VectorMaxPool2d",
    "VectorBatchNorm2d",
    "SEVFNet",
]

_POSITIVE_INT = Integer(low=1)
_REALS = Sequence(Real())

#: The factors of the SESN benchmark's SEVF on MNIST-Scale: ``1.26 ** k``, ``k = -4 .. 3``.
SEVF_FACTORS = tuple(float(1.26**k) for k in range(-4, 4))
#: Their angles: ``k * (2 pi / 3) / 7``, linear in ``log(factor)`` over a 120 degree range.
SEVF_ANGLES = tuple(float(k * (2 * math.pi / 3) / 7) for k in range(-4, 4))


def scale_vector_field(responses, angles):
    """Encode responses over scales as a vector field: (B, O, S, H, W) -> (B, O, 2, H, W).

    The length of the vector is ``relu(max_s responses)``; its angle is ``angles[argmax_s]``.

    Parameters
    ----------
    responses : tensor of shape (B, O, S, H, W)
    angles : sequence of float of length S

    Returns
    -------
    field : tensor of shape (B, O, 2, H, W)
        ``(length cos(angle), length sin(angle))``.

    Examples
    --------
    >>> responses = torch.tensor([1.0, 3.0, 2.0]).view(1, 1, 3, 1, 1)
    >>> field = scale_vector_field(responses, [0.0, math.pi / 2, math.pi]).flatten()
    >>> [round(value, 6) + 0.0 for value in field.tolist()]  # length 3, angle pi / 2
    [0.0, 3.0]
    """
    angles = torch.as_tensor(
        np.asarray(angles, dtype=np.float64), dtype=responses.dtype, device=responses.device
    )
    if responses.dim() != 5 or responses.shape[2] != len(angles):
        raise ValueError(
            f"responses must have shape (B, O, {len(angles)}, H, W), one scale per angle, "
            f"got {tuple(responses.shape)}."
        )
    values, winners = responses.max(dim=2)
    length = F.relu(values)
    angle = angles[winners]
    return torch.stack([length * torch.cos(angle), length * torch.sin(angle)], dim=2)


def vector_magnitude(field, eps=0.0):
    """Length of every vector of a (B, C, 2, H, W) field: (B, C, H, W).

    ``eps`` inside the square root keeps the gradient finite at zero vectors.
    """
    return torch.sqrt(field.pow(2).sum(dim=2) + eps)


def _resize(x, size):
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class ScaleVectorConv2d(OddKernelConv):
    """Scale convolution with a vector-field output (Marcos et al., 2018).

    For every factor ``s`` the input is resized to ``round(s H) x round(s W)``
    (bilinear), correlated with the kernel ("same" zero padding) and resized back;
    :func:`scale_vector_field` keeps the largest response and encodes its factor as an
    angle. A scalar input ``(B, C, H, W)`` (``vector_input=False``) is correlated with
    the scalar ``weight``. A vector input ``(B, C, 2, H, W)`` is correlated with the
    vector kernel ``(weight, weight_v)`` rotated by the factor's angle ``a``:
    ``(u, v) -> u * (w_u cos a - w_v sin a) + v * (w_u sin a + w_v cos a)``, so a vector
    of length ``L`` and angle ``t`` meets it at ``t - a``:
    ``L * (w_u cos(t - a) + w_v sin(t - a))``. An input rescaled by a ratio of the set
    wins one factor lower in the layer before, which turns its angles back by one step,
    and moves the matching factor of this layer one lower too: the two turns cancel. (The
    SESN benchmark's ``ScaleConvVector`` turns the kernel the other way, ``t + a``, so its
    deeper layers do not follow a rescaled input.)

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int, default=7
    factors : sequence of float, default=SEVF_FACTORS
    angles : sequence of float, default=SEVF_ANGLES
        One per factor.
    vector_input : bool, default=False

    Attributes
    ----------
    weight : Parameter of shape (O, C, k, k)
        The kernel (its first component, for a vector input).
    weight_v : Parameter of shape (O, C, k, k) or None
        Second component of the kernel, for a vector input. No bias: a bias would tie
        the length of the vectors to an arbitrary offset.

    Examples
    --------
    >>> layer = ScaleVectorConv2d(1, 4, kernel_size=5)
    >>> tuple(layer(torch.randn(2, 1, 16, 16)).shape)
    (2, 4, 2, 16, 16)
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size=7,
        factors=SEVF_FACTORS,
        angles=SEVF_ANGLES,
        *,
        vector_input=False,
    ):
        super().__init__(in_channels, out_channels, kernel_size)
        self.factors = Sequence(Real(low=0, closed="neither")).check(factors, "factors")
        self.angles = _REALS.check(angles, "angles")
        if len(self.angles) != len(self.factors):
            raise ValueError(
                f"angles must have one value per factor ({len(self.factors)}), got {len(self.angles)}."
            )
        self.vector_input = bool(vector_input)
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight = nn.Parameter(torch.empty(shape))
        self.weight_v = nn.Parameter(torch.empty(shape)) if self.vector_input else None
        self.reset_parameters()

    def reset_parameters(self):
        """Kaiming-uniform weights, as ``nn.Conv2d``."""
        reset_conv_parameters(self.weight)
        if self.weight_v is not None:
            reset_conv_parameters(self.weight_v)

    def _kernel(self, angle):
        if not self.vector_input:
            return self.weight
        # The kernel's vectors turned by +angle: a vector of angle theta meets them at
        # theta - angle, so an input turned with its scale excites the matching factor.
        cos, sin = math.cos(angle), math.sin(angle)
        kernel_u = self.weight * cos - self.weight_v * sin
        kernel_v = self.weight * sin + self.weight_v * cos
        # Channels of the flattened input are (c, component): interleave likewise.
        return torch.stack([kernel_u, kernel_v], dim=2).flatten(1, 2)

    def scale_responses(self, x):
        """The response at every factor before the encoding: (B, O, S, H, W)."""
        if self.vector_input:
            check_input_shape(self, x, self.in_channels, 2, scale_axis=True)
            x = x.flatten(1, 2)
        else:
            check_input_shape(self, x, self.in_channels)
        height, width = x.shape[-2:]
        responses = []
        for factor, angle in zip(self.factors, self.angles):
            size = (max(1, round(height * factor)), max(1, round(width * factor)))
            out = correlate_same(_resize(x, size), self._kernel(angle), impl="auto")
            responses.append(_resize(out, (height, width)))
        return torch.stack(responses, dim=2)

    def forward(self, x):
        return scale_vector_field(self.scale_responses(x), self.angles)

    def extra_repr(self):
        return super().extra_repr() + f", n_factors={len(self.factors)}, vector_input={self.vector_input}"


class VectorMaxPool2d(nn.Module):
    """Max pooling of a vector field by length: each window keeps its longest vector.

    ``(B, C, 2, H, W) -> (B, C, 2, H', W')`` with ``nn.MaxPool2d(kernel_size, stride,
    padding)``'s windows.
    """

    def __init__(self, kernel_size=2, stride=None, padding=0):
        super().__init__()
        self.kernel_size = _POSITIVE_INT.check(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else _POSITIVE_INT.check(stride, "stride")
        self.padding = Integer(low=0).check(padding, "padding")

    def forward(self, field):
        check_input_shape(self, field, None, 2, scale_axis=True)
        batch, channels = field.shape[:2]
        _, winners = F.max_pool2d(
            vector_magnitude(field),
            self.kernel_size,
            self.stride,
            self.padding,
            ceil_mode=True,
            return_indices=True,
        )
        index = winners.flatten(2).unsqueeze(2).expand(-1, -1, 2, -1)
        pooled = field.flatten(3).gather(3, index)
        return pooled.view(batch, channels, 2, *winners.shape[-2:])


class VectorBatchNorm2d(nn.Module):
    """Batch norm of a vector field's lengths; the angles are kept.

    Both components are divided by the standard deviation of the lengths of each
    channel (the batch's in training, a running average at inference) and multiplied by
    the absolute value of a learned gain (initialised to 1); there is no shift, which
    would change angles, and a negative gain would turn every vector by pi, which would
    move the angle that encodes its scale.

    Parameters
    ----------
    channels : int
    eps : float, default=1e-5
    momentum : float, default=0.1
    """

    def __init__(self, channels, eps=1e-5, momentum=0.1):
        super().__init__()
        self.channels = _POSITIVE_INT.check(channels, "channels")
        self.eps = Real(low=0, closed="neither").check(eps, "eps")
        self.momentum = Real(0, 1).check(momentum, "momentum")
        self.weight = nn.Parameter(torch.ones(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, field):
        check_input_shape(self, field, self.channels, 2, scale_axis=True)
        if self.training:
            lengths = vector_magnitude(field, self.eps)
            variance = lengths.transpose(0, 1).flatten(1).var(dim=1, unbiased=False)
            with torch.no_grad():
                n = lengths.numel() / self.channels
                unbiased = variance * n / max(n - 1, 1)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), self.momentum)
        else:
            variance = self.running_var.to(field.dtype)
        scale = self.weight.abs() / torch.sqrt(variance + self.eps)
        return field * scale.view(1, -1, 1, 1, 1)


class _Magnitude(nn.Module):
    def forward(self, field):
        return vector_magnitude(field, 1e-12)


@register_architecture("sevf")
class SEVFNet(nn.Module):
    """SEVF network for MNIST-sized images (Marcos et al., 2018), as benchmarked by SESN.

    :class:`ScaleVectorConv2d` (scalar input, 23 filters) -> :class:`VectorMaxPool2d` ->
    :class:`VectorBatchNorm2d`, a vector-input layer (46) -> pooling -> norm, a
    vector-input layer (70), the lengths of its vectors, and the SESN head (2 x 2 max
    pooling, 256 units without bias, batch norm, ReLU, dropout, logits). 7 x 7 kernels,
    eight factors ``1.26 ** k`` (``k = -4 .. 3``) with angles over 120 degrees, as in the
    SESN benchmark's vector SEVF: **495,202** trainable parameters for 10 classes on one
    channel (the paper's Table 5: 495k). The SESN code's widths 23/45/68 give 475k; the
    two upper layers are one and two filters wider here to reach the paper's size. Other
    differences from that code: the vector kernels turn the scale-equivariant way (see
    :class:`ScaleVectorConv2d`), and the vector batch norms apply their gain (by absolute
    value) and average their variance with momentum 0.1 (the SESN code: gain unused, 0.5).

    Parameters
    ----------
    n_classes : int
    in_channels : int, default=1
    factors, angles : sequence of float, default=SEVF_FACTORS, SEVF_ANGLES
    kernel_size : int, default=7
    widths : tuple of int, default=(23, 46, 70)
    hidden, dropout
        Of the head, which reads the lengths of the last vectors; as for
        :class:`~skscale.nn.models.PlainCNN`.
    """

    def __init__(
        self,
        n_classes,
        in_channels=1,
        factors=SEVF_FACTORS,
        angles=SEVF_ANGLES,
        kernel_size=7,
        widths=(23, 46, 70),
        hidden=SESN_LAYOUT.hidden,
        dropout=SESN_LAYOUT.dropout,
    ):
        super().__init__()
        widths = Sequence(_POSITIVE_INT).check(widths, "widths")
        layers, channels = [], in_channels
        for index, width in enumerate(widths):
            layers.append(
                ScaleVectorConv2d(channels, width, kernel_size, factors, angles, vector_input=index > 0)
            )
            if index < len(widths) - 1:
                layers += [VectorMaxPool2d(2), VectorBatchNorm2d(width)]
            channels = width
        layers.append(_Magnitude())
        self.features = nn.Sequential(*layers)
        self.head = mnist_head(channels, n_classes, hidden, dropout)

    def forward(self, x):
        return self.head(self.features(x))
