"""Record a trained network for deployment without skscale, skorch or scikit-learn.

:func:`export_module` is what :meth:`ScaleEquivariantClassifier.export` runs once it has
turned the user's example images into a tensor.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import logging
import os
import warnings

import torch

from .nn.memory import scale_convolutions
from .utils.validation import Options

__all__ = ["EXPORT_FORMATS", "export_module"]

#: The recordings :func:`export_module` makes.
EXPORT_FORMATS = ("torch", "torchscript", "onnx")


# torch's ONNX exporter logs one line per torchvision operator it cannot register when
# torchvision is absent (skscale uses none of them), and copies pytree specs through a
# deprecated isinstance check: the noise of every export, not the user's concern.
_ONNX_REGISTRY_LOGGER = "torch.onnx._internal.exporter._registration"
_TORCHVISION_ABSENT = "torchvision is not installed"
_LEAF_SPEC_DEPRECATION = r"`isinstance\(treespec, LeafSpec\)` is deprecated"


class _DropTorchvisionAbsent(logging.Filter):
    def filter(self, record):
        return not str(record.msg).startswith(_TORCHVISION_ABSENT)


@contextlib.contextmanager
def _quiet_onnx_exporter():
    """Silence exactly the exporter's torchvision lines and its pytree FutureWarning."""
    logger = logging.getLogger(_ONNX_REGISTRY_LOGGER)
    drop = _DropTorchvisionAbsent()
    logger.addFilter(drop)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_LEAF_SPEC_DEPRECATION, category=FutureWarning)
            yield
    finally:
        logger.removeFilter(drop)


def _record_onnx(module, images, dynamic_shapes):
    missing = [name for name in ("onnx", "onnxscript") if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(
            f"export(format='onnx') needs the packages {' and '.join(missing)}: "
            "pip install 'skscale[export]'."
        )
    # torch's ONNX exporter cannot translate complex spectra: every scale convolution runs directly.
    for layer in scale_convolutions(module):
        if hasattr(layer, "conv_impl"):
            layer.conv_impl = "direct"
    with _quiet_onnx_exporter():
        return torch.onnx.export(
            module,
            (images,),
            dynamo=True,
            dynamic_shapes=dynamic_shapes,
            input_names=["images"],
            output_names=["logits"],
            verbose=False,
        )


def export_module(module, images, *, format="torch", path=None):
    """Record a copy of ``module`` in eval mode while it maps ``images``.

    Parameters
    ----------
    module : torch.nn.Module
        The trained network; it is left as it was (a recording shares the parameters of
        the module it records, which a later fit would change in place, so a copy is
        recorded).
    images : torch.Tensor of shape (n_images, channels, height, width)
        Example input on the module's device. The batch dimension of the recording is
        dynamic (named ``"batch"``).
    format : {"torch", "torchscript", "onnx"}, default="torch"
        See :meth:`skscale.ScaleEquivariantClassifier.export`.
    path : str or path-like, optional
        Also save the recording there; its folder must exist (``FileNotFoundError``, an
        ``OSError``, before anything is recorded).

    Returns
    -------
    program : torch.export.ExportedProgram, torch.jit.ScriptModule or torch.onnx.ONNXProgram
    """
    format = Options(EXPORT_FORMATS).check(format, "format")
    if path is not None:
        folder = os.path.dirname(os.path.abspath(os.fspath(path)))
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"path={os.fspath(path)!r}: the folder {folder!r} does not exist.")
    # torch.export fixes a batch of one (its 0/1 specialisation): record two copies instead.
    if len(images) == 1:
        images = images.expand(2, *images.shape[1:])
    dynamic_shapes = ({0: torch.export.Dim("batch", min=1)},)
    module = copy.deepcopy(module).eval()
    if format == "torch":
        program = torch.export.export(module, (images,), dynamic_shapes=dynamic_shapes)
        if path is not None:
            torch.export.save(program, os.fspath(path))
        return program
    if format == "torchscript":
        with warnings.catch_warnings():
            # trace notes every size read as a Python int: the recording is for one input shape.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            program = torch.jit.trace(module, images)
    else:
        program = _record_onnx(module, images, dynamic_shapes)
    if path is not None:
        program.save(os.fspath(path))
    return program
