"""What decides a layer's inference path: forward hooks that a fused path must not skip,
and whether a graph is being recorded."""

from __future__ import annotations

import weakref

import torch
from torch import nn

__all__ = ["HookCountingModule", "has_forward_hooks", "recording", "takes_backward_path"]


class HookCountingModule(nn.Module):
    """An ``nn.Module`` that counts the forward (pre-)hooks registered on it.

    ``register_forward_hook`` and ``register_forward_pre_hook`` work as in torch; the count
    goes down when a returned handle is removed. :func:`has_forward_hooks` reads it, so a
    container that would run this module fused with the next one can run them apart while
    anybody observes their outputs. Hooks registered for every module at once
    (``torch.nn.modules.module.register_module_forward_hook``) are not counted.
    """

    def register_forward_hook(self, hook, **kwargs):
        return self._counted(super().register_forward_hook(hook, **kwargs))

    def register_forward_pre_hook(self, hook, **kwargs):
        return self._counted(super().register_forward_pre_hook(hook, **kwargs))

    def _counted(self, handle):
        self._n_forward_hooks = getattr(self, "_n_forward_hooks", 0) + 1
        module, remove, removed = weakref.ref(self), handle.remove, []

        def remove_and_count():
            if not removed and module() is not None:
                removed.append(True)
                module()._n_forward_hooks -= 1
            remove()

        handle.remove = remove_and_count  # also what ``with handle:`` calls on exit
        return handle


def has_forward_hooks(module):
    """Whether forward hooks registered on ``module`` itself (and counted) are in place."""
    return getattr(module, "_n_forward_hooks", 0) > 0


def recording():
    """Whether ``torch.jit.trace``, ``torch.export`` or ``torch.compile`` records the forward pass."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


def takes_backward_path(module, x):
    """Whether ``module`` takes its path for a backward pass on ``x``.

    Eager: when autograd records ``x``. A graph recorded by ``torch.jit.trace``,
    ``torch.export`` or ``torch.compile`` is one path whatever the grad mode: the
    backward one in training mode, the inference one in eval mode.
    """
    if recording():
        return module.training
    return torch.is_grad_enabled() and x.requires_grad
