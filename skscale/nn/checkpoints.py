"""Why a saved state does not fit a network: the differences, named by the layers they touch."""

from __future__ import annotations

from torch import nn

from .scales import InternalScales

__all__ = ["state_differences"]


def _prefixes(module, kind):
    return [name + "." if name else "" for name, layer in module.named_modules() if isinstance(layer, kind)]


def state_differences(module, state):
    """Compare a saved ``state`` dict with ``module``'s own.

    Returns
    -------
    differences : dict
        ``missing`` and ``unexpected`` keys, ``shapes`` (key, saved shape, current
        shape) of the tensors whose shapes differ, ``scale_count`` ((saved, current)
        when the number of internal scales differs, else None), ``scales`` (whether any
        difference lies in an :class:`~skscale.nn.InternalScales`), ``outputs`` ((saved,
        current) number of outputs of the last linear layer when they differ, else None).
    """
    current = module.state_dict()
    missing = sorted(set(current) - set(state))
    unexpected = sorted(set(state) - set(current))
    shapes = [
        (key, tuple(state[key].shape), tuple(current[key].shape))
        for key in sorted(set(state) & set(current))
        if tuple(state[key].shape) != tuple(current[key].shape)
    ]
    scale_prefixes = _prefixes(module, InternalScales)
    counts = [
        (int(state[key]), int(current[key]))
        for key in set(state) & set(current)
        if key.endswith("scale_count") and int(state[key]) != int(current[key])
    ]
    linear = _prefixes(module, nn.Linear)
    outputs = None
    if linear and linear[-1] + "weight" in state and linear[-1] + "weight" in current:
        saved, own = state[linear[-1] + "weight"].shape[0], current[linear[-1] + "weight"].shape[0]
        outputs = (int(saved), int(own)) if saved != own else None
    changed = missing + unexpected + [key for key, _, _ in shapes]
    return {
        "missing": missing,
        "unexpected": unexpected,
        "shapes": shapes,
        "scale_count": counts[0] if counts else None,
        "scales": any(key.startswith(prefix) for key in changed for prefix in scale_prefixes if prefix),
        "outputs": outputs,
    }
