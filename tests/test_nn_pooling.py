"""The scale projection and the 2 x 2 max pooling of the MNIST bodies (fused with the convolutions:
test_nn_blocks.py)."""

import pytest
import torch

from skscale.nn import InternalScales, ScaleConvH2H, ScaleConvT2H, ScaleProjection, build_module, pooling
from skscale.nn import conv as conv_module
from skscale.nn.pooling import MaxPool2x2, max_of_planes, max_over_scale_groups


def _reference_pool(x):
    if x.dim() == 4:
        return torch.nn.functional.max_pool2d(x, 2, ceil_mode=True)
    return torch.nn.functional.max_pool3d(x, (1, 2, 2), ceil_mode=True)


@pytest.mark.parametrize(
    "shape", [(2, 3, 8, 6), (2, 3, 7, 7), (2, 3, 6, 5), (2, 3, 4, 9, 8), (1, 2, 3, 7, 5)]
)
def test_max_pool_2x2_is_torchs_pooling_with_and_without_gradients(shape):
    x = torch.randn(*shape, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(MaxPool2x2()(x), _reference_pool(x), rtol=0, atol=0)
    ours = x.clone().requires_grad_()
    theirs = x.clone().requires_grad_()
    out = MaxPool2x2()(ours)
    torch.testing.assert_close(out, _reference_pool(theirs), rtol=0, atol=0)
    upstream = torch.randn_like(out)
    out.backward(upstream)
    _reference_pool(theirs).backward(upstream)
    torch.testing.assert_close(ours.grad, theirs.grad, rtol=0, atol=0)


def test_max_pool_2x2_sends_the_gradient_of_a_tie_where_torch_does():
    # Windows holding their maximum twice or more: torch's pooling takes the first in scan order.
    x = torch.tensor([[1.0, 1.0, 0.0, 2.0], [1.0, 0.0, 2.0, 2.0], [3.0, 0.0, 5.0, 5.0], [3.0, 3.0, 5.0, 5.0]])
    ours, theirs = (x.view(1, 1, 4, 4).clone().requires_grad_() for _ in range(2))
    upstream = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    MaxPool2x2()(ours).backward(upstream)
    _reference_pool(theirs).backward(upstream)
    torch.testing.assert_close(ours.grad, theirs.grad, rtol=0, atol=0)
    assert ours.grad.count_nonzero() == 4


def test_max_pool_2x2_sends_the_gradient_of_a_nan_window_where_torch_does():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    x[0, 0, 1, 1] = x[0, 0, 0, 3] = x[0, 0, 1, 2] = x[0, 0, 3, 2] = float("nan")
    ours, theirs = (x.clone().requires_grad_() for _ in range(2))
    upstream = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    MaxPool2x2()(ours).backward(upstream)
    _reference_pool(theirs).backward(upstream)
    torch.testing.assert_close(ours.grad, theirs.grad, rtol=0, atol=0)


def test_max_pool_2x2_of_channels_last_images_is_torchs_pooling():
    x = torch.randn(2, 3, 6, 7, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    ours, theirs = (x.clone().requires_grad_() for _ in range(2))
    out = MaxPool2x2()(ours)
    upstream = torch.randn_like(out)
    out.backward(upstream)
    _reference_pool(theirs).backward(upstream)
    torch.testing.assert_close(ours.grad, theirs.grad, rtol=0, atol=0)


@pytest.mark.parametrize("shape", [(3, 2, 2, 6, 8), (3, 1, 2, 2, 5, 7)])
def test_max_pool_2x2_under_torch_func_transforms_is_torchs_pooling(shape):
    x = torch.randn(*shape, dtype=torch.float64)
    tangent = torch.randn_like(x[0])

    def loss(pool):
        return lambda x: pool(x).square().sum()

    pools = (MaxPool2x2(), _reference_pool)
    per_example = [torch.func.vmap(torch.func.grad(loss(pool)))(x) for pool in pools]
    torch.testing.assert_close(*per_example, rtol=1e-12, atol=1e-12)
    forward = [torch.func.jvp(pool, (x[0],), (tangent,)) for pool in pools]
    for got, want in zip(*forward):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_max_pool_2x2_function_passes_gradcheck_forward_and_backward():
    x = torch.randn(2, 3, 2, 4, 6, dtype=torch.float64, requires_grad=True)

    def pool(x):
        return pooling._MaxPool2x2.apply(x)[0]

    assert torch.autograd.gradcheck(pool, (x,), check_forward_ad=True, fast_mode=True)
    assert torch.autograd.gradgradcheck(pool, (x,), fast_mode=True)


def test_max_pool_2x2_keeps_nan_and_refuses_other_shapes():
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 1, 1] = float("nan")
    with torch.no_grad():
        out = MaxPool2x2()(x)
    assert out[0, 0, 0, 0].isnan() and not out[0, 0, 1, 1].isnan()
    with pytest.raises(ValueError, match=r"\(B, C, H, W\) or \(B, C, S, H, W\), got \(4, 4\)"):
        MaxPool2x2()(torch.zeros(4, 4))


def test_max_projection_gradient_goes_to_the_maximum():
    x = torch.randn(2, 3, 4, 5, 5, dtype=torch.float64, requires_grad=True)
    reference = x.detach().clone().requires_grad_()
    out = ScaleProjection("max")(x)
    torch.testing.assert_close(out, reference.amax(dim=2), rtol=0, atol=0)
    upstream = torch.randn_like(out)
    out.backward(upstream)
    reference.amax(dim=2).backward(upstream)
    torch.testing.assert_close(x.grad, reference.grad, rtol=0, atol=0)
    # Every output's gradient lands on exactly one scale.
    assert torch.equal((x.grad != 0).sum(dim=2), torch.ones(2, 3, 5, 5, dtype=torch.long))


@pytest.mark.parametrize(
    "architecture, arguments", [("sesn", {"n_scales": 2}), ("dss", {"n_scales": 2}), ("cnn", {})]
)
def test_networks_pool_alike_in_training_and_inference(architecture, arguments):
    # The inference path (strided maxima) and the training path (torch's pooling) of the
    # same network in eval mode give the same logits.
    torch.manual_seed(0)
    network = build_module(architecture, n_classes=3, in_channels=1, **arguments).eval()
    assert any(isinstance(module, MaxPool2x2) for module in network.modules())
    x = torch.randn(4, 1, 28, 28, requires_grad=True)
    with torch.no_grad():
        without = network(x)
    with_gradients = network(x)
    assert with_gradients.requires_grad
    torch.testing.assert_close(without, with_gradients.detach())


def test_max_projection_of_ties_goes_to_one_scale():
    x = torch.ones(1, 2, 3, 2, 2, requires_grad=True)
    ScaleProjection("max")(x).sum().backward()
    assert torch.equal(x.grad.sum(dim=2), torch.ones(1, 2, 2, 2))
    assert torch.equal((x.grad != 0).sum(dim=2), torch.ones(1, 2, 2, 2, dtype=torch.long))


def _scale_layer(layer, n_scales, init_isr, batch, size, stride=1):
    """A lifting ("t2h") or scale-to-scale ("h2h", scale_size 2) layer from 2 to 3 channels, and an input."""
    torch.manual_seed(0)
    scales = InternalScales(n_scales=n_scales, init_sigma_basis=1.0, init_isr=init_isr)
    if layer == "t2h":
        return ScaleConvT2H(2, 3, scales, stride=stride), torch.randn(batch, 2, size, size)
    conv = ScaleConvH2H(2, 3, scales, scale_size=2, stride=stride)
    return conv, torch.randn(batch, 2, n_scales, size, size)


@pytest.mark.parametrize("layer", ["t2h", "h2h"])
def test_forward_max_projected_is_the_projection_of_the_output(layer):
    conv, x = _scale_layer(layer, n_scales=4, init_isr=4.0, batch=2, size=20)
    assert len(conv.correlation_plan(x.shape, backward=False)) > 1  # several groups to combine
    with torch.no_grad():
        torch.testing.assert_close(conv.forward_max_projected(x), conv(x).amax(dim=2), rtol=0, atol=0)


def _groups(*n_scales, dtype=torch.float64):
    return [torch.randn(2, 3, n, 4, 5, dtype=dtype, requires_grad=True) for n in n_scales]


def _concatenated_max(groups):
    return torch.cat(groups, dim=2).max(dim=2).values


def test_max_over_scale_groups_has_the_values_and_gradients_of_the_concatenated_max():
    torch.manual_seed(0)
    groups = _groups(2, 1, 3)
    reference = [group.detach().clone().requires_grad_() for group in groups]
    out = max_over_scale_groups(groups, backward=True)
    torch.testing.assert_close(out, _concatenated_max(reference), rtol=0, atol=0)
    upstream = torch.randn_like(out)
    out.backward(upstream)
    _concatenated_max(reference).backward(upstream)
    for ours, theirs in zip(groups, reference):
        torch.testing.assert_close(ours.grad, theirs.grad, rtol=0, atol=0)
    assert torch.autograd.gradcheck(lambda *g: max_over_scale_groups(g, backward=True), _groups(1, 2))
    with torch.no_grad():
        torch.testing.assert_close(max_over_scale_groups(groups, backward=False), out, rtol=0, atol=0)


def test_max_over_scale_groups_under_forward_ad_and_torch_func_transforms():
    groups = _groups(2, 1, 3)  # the shapes of one example
    assert torch.autograd.gradcheck(
        lambda *g: max_over_scale_groups(g, backward=True),
        _groups(1, 2),
        check_forward_ad=True,
        fast_mode=True,
    )
    # Per-example gradients, one group not mapped (shared by every example).
    examples = [torch.randn(4, *group.shape, dtype=group.dtype) for group in groups]
    shared = examples[1][0]

    def loss(first, second, third, combine):
        return combine([first, second, third]).square().sum()

    ours = torch.func.vmap(
        torch.func.grad(
            lambda a, b, c: loss(a, b, c, lambda g: max_over_scale_groups(g, backward=True)), (0, 1, 2)
        ),
        in_dims=(0, None, 0),
    )(examples[0], shared, examples[2])
    theirs = torch.func.vmap(
        torch.func.grad(lambda a, b, c: loss(a, b, c, _concatenated_max), (0, 1, 2)), in_dims=(0, None, 0)
    )(examples[0], shared, examples[2])
    for got, want in zip(ours, theirs):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_max_over_scale_groups_of_mixed_dtypes_gives_each_group_its_own():
    # Under autocast a group on the direct path may be bf16 and one on the FFT path float32.
    groups = [
        torch.randn(2, 3, 2, 4, 5, dtype=torch.bfloat16, requires_grad=True),
        _groups(1, dtype=torch.float32)[0],
    ]
    out = max_over_scale_groups(groups, backward=True)
    assert out.dtype == torch.float32
    torch.testing.assert_close(
        out, _concatenated_max([group.detach().float() for group in groups]), rtol=0, atol=0
    )
    out.sum().backward()
    assert [group.grad.dtype for group in groups] == [torch.bfloat16, torch.float32]
    assert sum(float(group.grad.sum()) for group in groups) == out.numel()


def test_max_over_scale_groups_sends_ties_and_nan_to_the_first_scale():
    groups = [torch.zeros(1, 1, 2, 1, 3, requires_grad=True), torch.zeros(1, 1, 2, 1, 3, requires_grad=True)]
    with torch.no_grad():
        groups[1][0, 0, 0, 0, 0] = 1.0  # a unique maximum in the third scale
        groups[1][0, 0, 1, 0, 1] = float("nan")  # a NaN in the fourth
    out = max_over_scale_groups(groups, backward=True)
    assert out[0, 0, 0, 0] == 1.0 and out[0, 0, 0, 1].isnan() and out[0, 0, 0, 2] == 0.0
    out.backward(torch.ones_like(out))
    first, second = groups[0].grad[0, 0, :, 0], groups[1].grad[0, 0, :, 0]
    assert torch.equal(first, torch.tensor([[0.0, 1.0, 1.0], [0.0, 0.0, 0.0]]))
    assert torch.equal(second, torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))


def test_max_over_scale_groups_counts_past_255_scales():
    groups = [
        torch.zeros(1, 1, 200, 1, 1, requires_grad=True),
        torch.zeros(1, 1, 100, 1, 1, requires_grad=True),
    ]
    with torch.no_grad():
        groups[1][0, 0, 80] = 1.0  # scale 280
    max_over_scale_groups(groups, backward=True).sum().backward()
    assert groups[1].grad[0, 0, 80] == 1.0 and groups[0].grad.sum() + groups[1].grad.sum() == 1.0


def test_max_of_planes_writes_out_and_leaves_its_planes():
    planes = list(torch.randn(4, 2, 3, 5).unbind(0))
    copies = [plane.clone() for plane in planes]
    out = torch.full((2, 3, 5), float("nan"))
    assert max_of_planes(planes, out=out) is out
    torch.testing.assert_close(out, torch.stack(copies).amax(dim=0), rtol=0, atol=0)
    torch.testing.assert_close(max_of_planes(planes), out, rtol=0, atol=0)
    assert all(torch.equal(plane, copy) for plane, copy in zip(planes, copies))
    mixed = [planes[0].bfloat16(), planes[1].bfloat16(), planes[2]]  # as autocast may give them
    expected = torch.maximum(torch.maximum(mixed[0], mixed[1]), mixed[2])
    assert expected.dtype == torch.float32
    torch.testing.assert_close(max_of_planes(mixed), expected, rtol=0, atol=0)


@pytest.mark.parametrize("layer", ["t2h", "h2h"])
def test_inference_in_chunks_gives_the_projection_of_the_whole_batch(layer, monkeypatch):
    # The lifting layer with stride 2: the chunk size counts the strided output.
    conv, x = _scale_layer(
        layer, n_scales=3, init_isr=3.0, batch=5, size=15, stride=2 if layer == "t2h" else 1
    )
    conv.eval()
    with torch.no_grad():
        whole = conv(x).amax(dim=2)
        image_bytes = whole[0].numel() * 3 * 4
        # Room for two images per chunk: chunks of 2, 2 and 1.
        monkeypatch.setattr(conv_module, "_FUSED_CHUNK_BYTES", 2 * image_bytes)
        calls = []
        original = conv._group_outputs
        monkeypatch.setattr(
            conv, "_group_outputs", lambda images: calls.append(len(images)) or original(images)
        )
        # Equal up to float rounding: on these small maps the FFT path's matrix products
        # (skscale.nn.dft) may round differently for 2 images than for 5.
        torch.testing.assert_close(conv.forward_max_projected(x), whole, rtol=1e-5, atol=1e-7)
    assert calls == [2, 2, 1]
