"""Counting the forward hooks of the layers that a fused inference path would skip."""

import copy

import torch

from skscale.nn import ScaleProjection
from skscale.nn.hooks import has_forward_hooks


def test_hooks_are_counted_until_their_handles_are_removed():
    projection = ScaleProjection()
    assert not has_forward_hooks(projection)
    seen = []
    first = projection.register_forward_hook(lambda module, inputs, output: seen.append(output.shape))
    second = projection.register_forward_pre_hook(lambda module, inputs: None)
    projection(torch.zeros(1, 2, 3, 4, 4))
    assert seen == [torch.Size([1, 2, 4, 4])]  # torch still runs them
    first.remove()
    first.remove()  # removing twice counts once
    assert has_forward_hooks(projection)
    with second:
        pass
    assert not has_forward_hooks(projection)
    projection(torch.zeros(1, 2, 3, 4, 4))
    assert len(seen) == 1


def test_a_copy_keeps_the_hooks_and_their_count():
    projection = ScaleProjection()
    projection.register_forward_hook(lambda module, inputs, output: None)
    assert has_forward_hooks(copy.deepcopy(projection))
