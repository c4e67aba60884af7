"""Memory budgets of the networks: what one image costs at prediction, what one batch needs.

:func:`activation_bytes_per_image` measures a built network in one probe pass (every
layer's output and the zero-padded spectra of each scale convolution);
:func:`check_kernel_memory` refuses kernels that cannot fit a device before any of
them is allocated (Eq. 6 sizes of the current scales).
"""

from __future__ import annotations

import os
import warnings
import weakref

import numpy as np
import torch

__all__ = [
    "LargeKernelWarning",
    "activation_bytes_per_image",
    "check_kernel_memory",
    "check_parameter_memory",
    "device_memory",
    "scale_convolutions",
]

# Bytes of a float32 value and of a complex64 value (the FFT path's spectra).
FLOAT_BYTES = 4
COMPLEX_BYTES = 8

# Activation bytes per image of a network, by (image shape, kernel sizes); kept beside the
# network (a weak key), so that measuring it changes no state of the network or estimator.
_BYTES_PER_IMAGE = weakref.WeakKeyDictionary()


class LargeKernelWarning(UserWarning):
    """The initial kernels are far larger than the images (e.g. tabular rows read as 1 x F images)."""


def device_memory(device):
    """Total memory of ``device`` in bytes (GPU memory, or the machine's RAM), or None if unknown."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


def scale_convolutions(module):
    """Layers whose kernels follow the internal scales (they expose ``kernel_sizes()``)."""
    return [m for m in module.modules() if callable(getattr(m, "kernel_sizes", None))]


def gib(n_bytes):
    """``n_bytes`` as text in GiB, three significant digits."""
    return f"{n_bytes / 2**30:.3g} GiB"


def _nbytes(output):
    if torch.is_tensor(output):
        return output.numel() * output.element_size()
    if isinstance(output, (tuple, list)):
        return sum(_nbytes(item) for item in output)
    return 0


def activation_bytes_per_image(module, shape, device="cpu"):
    """Activation bytes of one image of ``shape`` (C, H, W) in ``module`` at prediction.

    Every leaf layer's output, plus each scale convolution's zero-padded input and output
    spectra (complex64 on the FFT path), from one probe pass in eval mode; cached per
    network, image shape and kernel sizes.
    """
    convolutions = scale_convolutions(module)
    key = (tuple(shape), tuple(tuple(layer.kernel_sizes()) for layer in convolutions))
    cache = _BYTES_PER_IMAGE.setdefault(module, {})
    if key in cache:
        return cache[key]
    total = [FLOAT_BYTES * int(np.prod(shape))]

    def record_output(layer, inputs, output):
        total.append(_nbytes(output))

    def record_spectra(layer, inputs):
        x = inputs[0]
        size = max(layer.kernel_sizes())
        padded = (x.shape[-2] + size - 1) * (x.shape[-1] + size - 1)
        channels = int(np.prod(x.shape[1:-2]))
        total.append(COMPLEX_BYTES * (channels + layer.out_channels * layer.n_scales) * padded)

    hooks = [
        layer.register_forward_hook(record_output)
        for layer in module.modules()
        if layer is not module and (not list(layer.children()) or layer in convolutions)
    ]
    hooks += [layer.register_forward_pre_hook(record_spectra) for layer in convolutions]
    training = module.training
    try:
        module.eval()
        with torch.no_grad():
            module(torch.zeros((1, *shape), device=device))
    finally:
        module.train(training)
        for hook in hooks:
            hook.remove()
    cache[key] = sum(total)
    return cache[key]


# Bytes a trained parameter costs besides itself: its gradient and Adam's two moments.
_TRAINING_COPIES = 4


def check_parameter_memory(build, device, parameter, value):
    """Refuse a network whose parameters cannot be trained on ``device``, before building it.

    ``build()`` is called once on torch's ``meta`` device (shapes without storage) to
    count the parameters; builders that read tensor values while building cannot be
    counted that way and pass unchecked.

    Parameters
    ----------
    build : callable
        Builds the network (no arguments).
    device : str or torch.device
    parameter, value : str, object
        The hyper-parameter that sets the network's width and its value, for the error.
    """
    try:
        with torch.device("meta"):
            shapes = build()
    except (RuntimeError, NotImplementedError):
        return
    n_values = sum(parameter.numel() for parameter in shapes.parameters())
    needed = _TRAINING_COPIES * FLOAT_BYTES * n_values
    available = device_memory(device)
    if available is not None and needed > available:
        raise ValueError(
            f"The network would have {n_values:,} parameters ({parameter}={value!r}): training them "
            f"(weights, gradients and the optimiser's state) needs about {gib(needed)}, more than the "
            f"{gib(available)} of device {str(device)!r}. Choose a smaller {parameter}."
        )


def _drivers(largest, image_side, n_scales, channels, batch_size):
    """The hyper-parameters that make a batch large, by the values that are out of the usual range."""
    drivers = []
    if largest > 4 * image_side:
        drivers.append(
            f"the kernel size ({largest} px on {image_side}-px images: "
            "init_isr, init_sigma_basis, kernel_extent)"
        )
    if n_scales > 64:
        drivers.append(f"n_scales={n_scales}")
    if channels > 4096:
        drivers.append(f"the channels ({channels}: n_filters or the architecture)")
    if batch_size > 4096:
        drivers.append(f"batch_size={batch_size}")
    return drivers


def check_kernel_memory(module, input_shape, batch_size, device, settings):
    """Refuse kernels that cannot fit ``device``; warn when they dwarf the images.

    The estimate (Eq. 6 sizes of the current scales, the image size) is a lower bound of
    what one training batch allocates: every scale convolution's basis and kernels, and
    per image its zero-padded input and output spectra.

    Parameters
    ----------
    module : torch.nn.Module
    input_shape : tuple of int
        ``(channels, height, width)`` of the images.
    batch_size : int
    device : str or torch.device
    settings : str
        The hyper-parameters that set the kernel sizes, as the error should quote them.
    """
    _, height, width = input_shape
    fixed, per_image, largest, most_scales, most_channels = 0, 0, 0, 0, 0
    for layer in scale_convolutions(module):
        sizes = [int(size) for size in layer.kernel_sizes()]
        size = max(sizes)
        largest = max(largest, size)
        channels = getattr(layer, "in_channels", 1) * getattr(layer, "scale_size", 1)
        out_channels = getattr(layer, "out_channels", 1)
        most_scales, most_channels = max(most_scales, len(sizes)), max(most_channels, channels, out_channels)
        filters = getattr(layer, "n_functions", 1) + channels * out_channels
        fixed += FLOAT_BYTES * filters * sum(side * side for side in sizes)
        padded = (height + size - 1) * (width + size - 1)
        per_image += COMPLEX_BYTES * (channels + out_channels) * len(sizes) * padded
    if not largest:
        return
    needed = fixed + batch_size * per_image
    available = device_memory(device)
    if available is not None and needed > available:
        drivers = _drivers(largest, max(height, width), most_scales, most_channels, batch_size)
        raise ValueError(
            f"The largest initial kernel spans {largest} x {largest} pixels (Eq. 6 with {settings}) on "
            f"{height} x {width} images, with {most_scales} scales and up to {most_channels} channels: one "
            f"batch of {batch_size} needs at least {gib(needed)}, more than the {gib(available)} of device "
            f"{str(device)!r}. Lower "
            + (
                " or ".join(drivers)
                if drivers
                else "init_isr, init_sigma_basis or kernel_extent (or batch_size)"
            )
            + "."
        )
    if largest > 4 * max(height, width):
        warnings.warn(
            f"The largest initial kernel spans {largest} pixels but the images are {height} x {width}; "
            "pass image_shape for flattened images, or lower init_sigma_basis / init_isr.",
            LargeKernelWarning,
            stacklevel=3,
        )
