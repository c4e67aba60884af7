import copy
import pickle

import pytest
import torch
import torch.nn.functional as F

from skscale.basis import hermite_basis, kernel_size
from skscale.metrics import scale_equivariance_error
from skscale.nn import InternalScales, ScaleConvH2H, ScaleConvT2H, ScaleProjection, planning

from .conftest import smooth_noise


def padded_reference_t2h(layer, x):
    """Every scale's kernel zero-padded to the largest support, one convolution: SESN's scheme."""
    scales = layer.scales().to(x.dtype)
    size = kernel_size(float(scales.detach().max()), layer.kernel_extent)
    basis = hermite_basis(scales, size, layer.max_order, kernel_extent=layer.kernel_extent)
    kernel = torch.einsum("ocf,fsyx->socyx", layer.weight, basis)
    outs = [F.conv2d(x, k, padding=size // 2, stride=layer.stride) for k in kernel]
    out = torch.stack(outs, dim=2)
    return out + layer.bias.view(1, -1, 1, 1, 1)


def test_t2h_shapes_channels_stride_and_batch():
    scales = InternalScales(3, "isr", init_sigma_basis=1.0, init_isr=3.0)
    layer = ScaleConvT2H(3, 5, scales)
    assert layer(torch.randn(2, 3, 17, 23)).shape == (2, 5, 3, 17, 23)
    assert layer(torch.randn(1, 3, 4, 4)).shape == (1, 5, 3, 4, 4)  # smaller than the kernel
    strided = ScaleConvT2H(3, 5, scales, stride=2)
    assert strided(torch.randn(2, 3, 17, 23)).shape == (2, 5, 3, 9, 12)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        layer(torch.randn(2, 1, 8, 8))


def test_h2h_shapes_and_scale_interaction():
    scales = InternalScales(4, "fixed", init_sigma_basis=1.0, init_isr=2.0)
    layer = ScaleConvH2H(3, 6, scales, scale_size=2)
    assert layer.weight.shape == (6, 3, 2, 10)
    x = torch.randn(2, 3, 4, 12, 12)
    assert layer(x).shape == (2, 6, 4, 12, 12)
    # Output scale s reads input scales s and s + 1 only: changing input scale 3 leaves
    # output scales 0 and 1 unchanged and changes 2 and 3.
    changed = x.clone()
    changed[:, :, 3] += 1.0
    difference = (layer(changed) - layer(x)).abs().amax(dim=(0, 1, 3, 4))
    assert difference[:2].max() == 0 and bool((difference[2:] > 0).all())
    with pytest.raises(ValueError, match=r"\(B, 3, 4, H, W\)"):
        layer(torch.randn(2, 3, 3, 12, 12))


def test_per_scale_supports_match_padded_convolution_float64():
    scales = InternalScales(3, "isr", init_sigma_basis=1.2, init_isr=4.0).double()
    layer = ScaleConvT2H(2, 4, scales, kernel_extent=2.0).double()
    assert layer.kernel_sizes() == [7, 11, 21]
    x = torch.randn(2, 2, 30, 30, dtype=torch.float64)
    torch.testing.assert_close(layer(x), padded_reference_t2h(layer, x), rtol=1e-10, atol=1e-12)


def test_unsorted_direct_scales_keep_their_order():
    scales = InternalScales.from_values([3.0, 1.0, 2.0], trainable=True).double()
    layer = ScaleConvT2H(1, 2, scales).double()
    x = torch.randn(1, 1, 20, 20, dtype=torch.float64)
    torch.testing.assert_close(layer(x), padded_reference_t2h(layer, x), rtol=1e-10, atol=1e-12)


def test_h2h_equals_per_scale_convolution():
    scales = InternalScales(3, "fixed", init_sigma_basis=1.0, init_isr=3.0).double()
    layer = ScaleConvH2H(2, 3, scales, scale_size=2).double()
    x = torch.randn(2, 2, 3, 16, 16, dtype=torch.float64)
    expected = []
    for s, sigma in enumerate(scales().tolist()):
        size = kernel_size(sigma, 2.0)
        basis = hermite_basis(torch.tensor([sigma], dtype=torch.float64), size, 3)[:, 0]
        out = 0
        for j in range(2):
            if s + j < 3:
                kernel = torch.einsum("ocf,fyx->ocyx", layer.weight[:, :, j], basis)
                out = out + F.conv2d(x[:, :, s + j], kernel, padding=size // 2)
        expected.append(out)
    expected = torch.stack(expected, dim=2) + layer.bias.view(1, -1, 1, 1, 1)
    torch.testing.assert_close(layer(x), expected, rtol=1e-10, atol=1e-12)


def test_t2h_is_scale_equivariant_far_below_a_control():
    """Eq. 1: the output at scale 2 sigma on L_2[f] equals L_2 of the output at sigma on f."""
    images = smooth_noise(4, 96, sigma=1.0)
    layer = ScaleConvT2H(1, 8, [1.0, 2.0, 4.0], kernel_extent=2.0)
    error = scale_equivariance_error(layer, images, factor=2.0, scale_shift=1)
    unmatched = scale_equivariance_error(layer, images, factor=2.0, scale_shift=0)
    plain = scale_equivariance_error(torch.nn.Conv2d(1, 8, 9, padding=4), images, factor=2.0)
    assert error < 0.03
    assert unmatched > 5 * error
    assert plain > 20 * error


def test_t2h_h2h_network_is_scale_equivariant():
    scales = InternalScales.from_values([1.0, 2.0, 4.0])
    net = torch.nn.Sequential(
        ScaleConvT2H(1, 6, scales), torch.nn.ReLU(), ScaleConvH2H(6, 6, scales), ScaleProjection("max")
    )
    images = smooth_noise(2, 96, sigma=1.5)
    # After projection the network is invariant up to the lost top scale: compare the
    # equivariant trunk instead.
    trunk = net[:3]
    assert scale_equivariance_error(trunk, images, factor=2.0, scale_shift=1) < 0.05


def test_gradcheck_t2h_with_respect_to_sigma_basis_and_gamma():
    scales = InternalScales(2, "isr", init_sigma_basis=1.1, init_isr=1.8).double()
    layer = ScaleConvT2H(1, 2, scales, max_order=2).double()
    x = torch.randn(1, 1, 9, 9, dtype=torch.float64)

    sigma = scales.sigma.detach().clone().requires_grad_(True)
    gamma = scales.gamma.detach().clone().requires_grad_(True)

    def functional(sigma, gamma):
        return torch.func.functional_call(layer, {"scales.sigma": sigma, "scales.gamma": gamma}, (x,))

    assert torch.autograd.gradcheck(functional, (sigma, gamma))


@pytest.mark.parametrize("parameterisation", ["isr", "spacing", "direct"])
def test_one_optimiser_step_moves_every_scale_parameter(parameterisation):
    scales = InternalScales(3, parameterisation, init_sigma_basis=1.0, init_isr=2.0)
    net = torch.nn.Sequential(ScaleConvT2H(1, 4, scales), ScaleConvH2H(4, 2, scales), ScaleProjection())
    before = {name: p.detach().clone() for name, p in scales.named_parameters()}
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    net(torch.randn(2, 1, 16, 16)).pow(2).mean().backward()
    for name, parameter in scales.named_parameters():
        assert parameter.grad is not None and bool(parameter.grad.abs().sum() > 0), name
    optimiser.step()
    for name, parameter in scales.named_parameters():
        assert not torch.equal(parameter, before[name]), name


def test_fixed_scales_receive_no_gradient_and_stay():
    scales = InternalScales(3, "fixed")
    layer = ScaleConvT2H(1, 2, scales)
    layer(torch.randn(1, 1, 12, 12)).sum().backward()
    assert list(scales.parameters()) == []
    torch.testing.assert_close(scales(), torch.tensor([2.0, 2.0 * 3**0.5, 6.0]))


def test_learning_moves_the_scale_toward_the_known_one():
    """A student with one learnable scale imitates a teacher at sigma = 3: sigma moves to 3."""
    torch.manual_seed(0)
    teacher = ScaleConvT2H(1, 4, [3.0], max_order=2)
    student = ScaleConvT2H(1, 4, InternalScales(1, "isr", init_sigma_basis=1.8), max_order=2)
    student.weight.data.copy_(teacher.weight.data)
    student.bias.data.copy_(teacher.bias.data)
    images = smooth_noise(8, 40, sigma=1.0)
    target = teacher(images).detach()
    optimiser = torch.optim.Adam(student.scales.parameters(), lr=0.05)
    for _ in range(60):
        optimiser.zero_grad()
        F.mse_loss(student(images), target).backward()
        optimiser.step()
    assert abs(student.scales.sigma_basis - 3.0) < 0.15


def test_basis_cache_fixed_and_eval_mode():
    fixed = ScaleConvT2H(1, 2, [1.0, 2.0])
    first = fixed.basis_groups()
    assert fixed.basis_groups()[0][1] is first[0][1]  # computed once

    learned = ScaleConvT2H(1, 2, InternalScales(2, "isr", init_sigma_basis=1.0, init_isr=2.0))
    x = torch.randn(1, 1, 10, 10)
    learned.train()
    assert learned.basis_groups()[0][1] is not learned.basis_groups()[0][1]  # rebuilt in training
    learned.eval()
    with torch.no_grad():
        cached = learned.basis_groups()[0][1]
        assert learned.basis_groups()[0][1] is cached
        out = learned(x)
    # An update of the scales invalidates the cache.
    with torch.no_grad():
        learned.scales.gamma.add_(0.5)
        assert learned.basis_groups()[0][1] is not cached
        assert not torch.allclose(learned(x), out)


def test_modules_pickle_and_deepcopy_with_shared_scales():
    scales = InternalScales(2, "isr", init_sigma_basis=1.0, init_isr=2.0)
    net = torch.nn.Sequential(ScaleConvT2H(1, 2, scales), ScaleConvH2H(2, 2, scales))
    x = torch.randn(1, 1, 8, 8)
    for clone in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        torch.testing.assert_close(clone(x), net(x))
        assert clone[0].scales is clone[1].scales  # still shared
    assert len(list(net.parameters())) == 2 + 2 + 2  # scales counted once


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(in_channels=0), "in_channels must be an integer >= 1, got 0"),
        (dict(out_channels=-1), "out_channels must be an integer >= 1, got -1"),
        (dict(kernel_extent=0.0), "kernel_extent must be a finite number > 0, got 0.0"),
        (dict(stride=0), "stride must be an integer >= 1, got 0"),
        (dict(max_order=-1), "max_order must be an integer >= 0, got -1"),
        (dict(scales=torch.nn.Linear(1, 1)), "scales"),
    ],
)
def test_invalid_layer_arguments(kwargs, match):
    arguments = dict(in_channels=1, out_channels=2, scales=[1.0, 2.0])
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=match):
        ScaleConvT2H(**arguments)
    with pytest.raises(ValueError, match="scale_size must be an integer >= 1, got 0"):
        ScaleConvH2H(1, 2, [1.0, 2.0], scale_size=0)


def test_projection_modes():
    x = torch.randn(2, 3, 4, 5, 5)
    torch.testing.assert_close(ScaleProjection("max")(x), x.amax(dim=2))
    torch.testing.assert_close(ScaleProjection("mean")(x), x.mean(dim=2))
    with pytest.raises(ValueError, match="mode"):
        ScaleProjection("sum")
    with pytest.raises(ValueError, match=r"\(B, C, S, H, W\)"):
        ScaleProjection()(torch.randn(2, 3, 4, 4))


# --- Correlation paths: FFT, per-scale supports, and the SESN padded scheme -----------------


def padded_reference_h2h(layer, x):
    """H2H with every scale's kernel padded to the largest support, one F.conv2d per term."""
    scales = layer.scales().to(x.dtype)
    size = kernel_size(float(scales.detach().max()), layer.kernel_extent)
    basis = hermite_basis(scales, size, layer.max_order, kernel_extent=layer.kernel_extent)
    n_scales = scales.shape[0]
    outs = []
    for s in range(n_scales):
        out = 0
        for j in range(layer.scale_size):
            if s + j < n_scales:
                kernel = torch.einsum("ocf,fyx->ocyx", layer.weight[:, :, j], basis[:, s])
                out = out + F.conv2d(x[:, :, s + j], kernel, padding=size // 2, stride=layer.stride)
        outs.append(out)
    return torch.stack(outs, dim=2) + layer.bias.view(1, -1, 1, 1, 1)


def relative_error(actual, expected):
    actual, expected = actual.detach(), expected.detach()
    return float((actual - expected).norm() / expected.norm())


def make_layer(kind, conv_impl, per_scale_support, stride, scales=None):
    scales = scales or InternalScales(3, "isr", init_sigma_basis=1.2, init_isr=3.0)
    common = dict(conv_impl=conv_impl, per_scale_support=per_scale_support, stride=stride)
    if kind == "t2h":
        layer, x = ScaleConvT2H(2, 3, scales, **common), torch.randn(2, 2, 18, 17)
    else:
        scale_size = int(kind[-1])
        layer = ScaleConvH2H(2, 3, scales, scale_size=scale_size, **common)
        x = torch.randn(2, 2, scales.n_scales, 18, 17)
    return layer.double(), x.double().requires_grad_(True)


def outputs_and_gradients(layer, x, forward):
    out = forward(layer, x)
    upstream = torch.randn(out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(1))
    tensors = [x, layer.weight, layer.bias, *layer.scales.parameters()]
    return out, torch.autograd.grad(out, tensors, upstream)


def assert_matches_padded_reference(layer, x, kind):
    """Forward and gradients (input, weights, bias, scale parameters) to 1e-8 of the padded reference."""
    reference = padded_reference_t2h if kind == "t2h" else padded_reference_h2h
    out, grads = outputs_and_gradients(layer, x, lambda m, v: m(v))
    expected, expected_grads = outputs_and_gradients(layer, x, reference)
    assert relative_error(out, expected) < 1e-8
    for got, want in zip(grads, expected_grads):
        assert relative_error(got, want) < 1e-8
    return grads


@pytest.mark.parametrize("kind", ["t2h", "h2h1", "h2h2"])
@pytest.mark.parametrize("conv_impl", ["direct", "fft", "auto"])
@pytest.mark.parametrize("per_scale_support, stride", [(True, 1), (False, 2)])
def test_paths_match_padded_direct_convolution_with_gradients(kind, conv_impl, per_scale_support, stride):
    """Forward and gradients (input, weights, bias, sigma_basis, gamma) to 1e-8 in float64."""
    layer, x = make_layer(kind, conv_impl, per_scale_support, stride)
    assert layer.kernel_sizes() == [7, 11, 17]
    grads = assert_matches_padded_reference(layer, x, kind)
    assert len(grads) == 5  # x, weight, bias, sigma, gamma


@pytest.mark.parametrize("kind", ["t2h", "h2h2"])
def test_mixed_plan_with_unsorted_scales(kind, monkeypatch):
    """Some supports direct, the others merged into one FFT call; scale order is kept."""
    # Modelled costs (direct, fft): supports of 9 and more are cheaper through the FFT.
    monkeypatch.setattr(
        planning,
        "conv_cost_estimates",
        lambda size, *a, **k: (1.0, 0.0) if size >= 9 else (0.0, 1.0),
    )
    scales = InternalScales.from_values([1.0, 3.6, 1.1, 2.0], trainable=True)
    layer, x = make_layer(kind, "auto", True, 1, scales=scales)
    assert layer.kernel_sizes() == [5, 17, 7, 9]
    plan = layer.correlation_plan(x.shape)
    assert plan == [((0,), 5, "direct"), ((2,), 7, "direct"), ((3, 1), 17, "fft")]
    assert_matches_padded_reference(layer, x, kind)


@pytest.mark.parametrize("kind", ["t2h", "h2h2"])
@pytest.mark.parametrize("conv_impl", ["direct", "fft", "auto"])
@pytest.mark.parametrize("stride", [1, 2])
def test_kernels_wider_than_the_image_are_cut_without_changing_outputs_or_gradients(kind, conv_impl, stride):
    layer, _ = make_layer(kind, conv_impl, True, stride)
    assert layer.kernel_sizes() == [7, 11, 17]
    shape = (2, 2, 6, 5) if kind == "t2h" else (2, 2, 3, 6, 5)
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    plan = layer.correlation_plan(x.shape)
    # On 6 x 5 images a tap reaches at most 5 pixels from the centre: the 17-pixel kernel is
    # cut to 2 * 6 - 1 = 11 and shares the call of the 11-pixel one.
    assert max(size for _, size, _ in plan) == 11
    if conv_impl == "direct":
        assert plan == [((0,), 7, "direct"), ((1, 2), 11, "direct")]
    assert_matches_padded_reference(layer, x, kind)


def test_gradcheck_fft_path_with_respect_to_sigma_basis_and_gamma():
    scales = InternalScales(2, "isr", init_sigma_basis=1.1, init_isr=1.8).double()
    layer = ScaleConvT2H(1, 2, scales, max_order=2, conv_impl="fft").double()
    x = torch.randn(1, 1, 9, 9, dtype=torch.float64)
    sigma = scales.sigma.detach().clone().requires_grad_(True)
    gamma = scales.gamma.detach().clone().requires_grad_(True)

    def functional(sigma, gamma):
        return torch.func.functional_call(layer, {"scales.sigma": sigma, "scales.gamma": gamma}, (x,))

    assert torch.autograd.gradcheck(functional, (sigma, gamma), fast_mode=True)


def test_correlation_plan_auto_is_deterministic():
    scales = InternalScales(3, "isr", init_sigma_basis=2.0, init_isr=3.0)
    layer = ScaleConvT2H(1, 16, scales)
    assert layer.kernel_sizes() == [9, 15, 25]
    plans = [layer.correlation_plan((8, 1, 168, 168)) for _ in range(3)]
    assert plans[0] == plans[1] == plans[2]
    # Training on 168 x 168: the 9-pixel support stays direct, the 25-pixel one uses the FFT.
    assert plans[0][0] == ((0,), 9, "direct") and plans[0][-1][2] == "fft"
    assert 2 in plans[0][-1][0]
    assert ScaleConvT2H(1, 16, scales, conv_impl="direct").correlation_plan((8, 1, 168, 168)) == [
        ((0,), 9, "direct"),
        ((1,), 15, "direct"),
        ((2,), 25, "direct"),
    ]
    assert ScaleConvT2H(1, 16, scales, per_scale_support=False, conv_impl="direct").correlation_plan(
        (8, 1, 168, 168)
    ) == [((0, 1, 2), 25, "direct")]


def test_forward_reads_the_host_once_per_layer_and_copies_nothing(monkeypatch):
    """Only support_sizes' .tolist() crosses to the host; no host-to-device tensor is made."""
    scales = InternalScales.from_values([1.0, 2.5, 1.2], trainable=True)  # unsorted: index path
    net = torch.nn.Sequential(
        ScaleConvT2H(1, 2, scales, conv_impl="fft"), ScaleConvH2H(2, 2, scales, scale_size=2)
    )
    x = torch.randn(2, 1, 12, 12)
    net(x).sum().backward()  # warm-up fills the index caches

    calls = {"tolist": 0, "item": 0, "tensor": 0}

    def counting(name, original):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return original(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(torch.Tensor, "tolist", counting("tolist", torch.Tensor.tolist))
    monkeypatch.setattr(torch.Tensor, "item", counting("item", torch.Tensor.item))
    monkeypatch.setattr(torch, "tensor", counting("tensor", torch.tensor))
    monkeypatch.setattr(torch, "as_tensor", counting("tensor", torch.as_tensor))
    net(x).sum().backward()
    assert calls == {"tolist": 2, "item": 0, "tensor": 0}
    # Fixed scales: the cached basis needs no host read at all.
    fixed = ScaleConvH2H(2, 2, [1.0, 2.0, 3.0])
    fixed(torch.randn(1, 2, 3, 8, 8))
    calls.update(tolist=0)
    fixed(torch.randn(1, 2, 3, 8, 8))
    assert calls["tolist"] == 0


def test_invalid_conv_impl_and_per_scale_support():
    with pytest.raises(ValueError, match="conv_impl must be one of .* got 'gpu'"):
        ScaleConvT2H(1, 2, [1.0, 2.0], conv_impl="gpu")
    with pytest.raises(ValueError, match="conv_impl must be one of .* got None"):
        ScaleConvH2H(1, 2, [1.0, 2.0], conv_impl=None)
    with pytest.raises(ValueError, match="per_scale_support must be True or False, got 1"):
        ScaleConvT2H(1, 2, [1.0, 2.0], per_scale_support=1)


# --- Inference cache of kernels and kernel spectra -------------------------------------------
@pytest.mark.parametrize("impl", ["direct", "fft"])
@pytest.mark.parametrize("layer", ["t2h", "h2h"])
def test_inference_reuses_kernels_until_weights_scales_or_size_change(impl, layer):
    torch.manual_seed(0)
    scales = InternalScales(n_scales=3, init_sigma_basis=1.0, init_isr=3.0)
    if layer == "t2h":
        conv = ScaleConvT2H(2, 3, scales, conv_impl=impl)
        x, other_size = torch.randn(2, 2, 16, 16), torch.randn(2, 2, 12, 20)
    else:
        conv = ScaleConvH2H(2, 3, scales, scale_size=2, conv_impl=impl)
        x, other_size = torch.randn(2, 2, 3, 16, 16), torch.randn(2, 2, 3, 12, 20)
    conv.eval()

    def uncached(inputs):  # with gradients enabled nothing is cached
        return conv(inputs).detach()

    with torch.no_grad():
        first = conv(x)
        assert conv._kernel_cache  # kept for the next call
        torch.testing.assert_close(conv(x), first, rtol=0, atol=0)
        torch.testing.assert_close(first, uncached(x))
        torch.testing.assert_close(conv(other_size), uncached(other_size))
        conv.weight.mul_(-2.0)  # an optimiser step or load_state_dict changes them in place
        torch.testing.assert_close(conv(x), uncached(x))
        torch.testing.assert_close(conv(x), -2.0 * first + 3.0 * conv.bias.view(1, -1, 1, 1, 1))
        scales.sigma.fill_(1.4)  # other scales: another basis
        changed = conv(x)
    torch.testing.assert_close(changed, uncached(x))
    assert not torch.allclose(changed, -2.0 * first + 3.0 * conv.bias.view(1, -1, 1, 1, 1))


def test_loaded_weights_replace_cached_kernels():
    torch.manual_seed(0)
    net = ScaleConvT2H(1, 4, InternalScales(n_scales=3, init_sigma_basis=1.0, init_isr=4.0)).eval()
    other = ScaleConvT2H(1, 4, InternalScales(n_scales=3, init_sigma_basis=1.0, init_isr=4.0)).eval()
    x = torch.randn(2, 1, 24, 24)
    with torch.no_grad():
        net(x)
        net.load_state_dict(other.state_dict())
        torch.testing.assert_close(net(x), other(x), rtol=0, atol=0)


@pytest.mark.parametrize("conv_impl", ["direct", "fft"])
def test_per_example_gradients_with_torch_func_equal_autograd_with_learned_scales(conv_impl):
    # vmap of grad over examples, the scales learned and the layer in training mode.
    torch.manual_seed(0)
    layer = ScaleConvT2H(
        2, 3, InternalScales(3, "isr", init_sigma_basis=1.0, init_isr=3.0), conv_impl=conv_impl
    )
    layer = layer.double().train()
    x = torch.randn(3, 2, 12, 12, dtype=torch.float64)
    params = {name: p.detach() for name, p in layer.named_parameters()}

    def loss(params, image):
        return torch.func.functional_call(layer, params, (image[None],)).square().sum()

    per_example = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0))(params, x)
    for i in range(len(x)):
        layer.zero_grad()
        layer(x[i : i + 1]).square().sum().backward()
        for name, p in layer.named_parameters():
            assert p.grad is not None and float(p.grad.abs().max()) > 0, name
            torch.testing.assert_close(per_example[name][i], p.grad, rtol=1e-9, atol=1e-12)
