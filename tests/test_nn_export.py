"""Networks of scale convolutions recorded in eval mode: torch.jit.trace, torch.export, torch.compile."""

import pickle
import warnings

import pytest
import torch

from skscale.nn import InternalScales, ScaleConvH2H, ScaleConvT2H, ScaleProjection, Table1Net, build_module


def small_network(seed=0):
    torch.manual_seed(seed)
    scales = InternalScales(3, "isr", init_sigma_basis=1.0, init_isr=6.0)  # kernels 5, 11, 25
    return torch.nn.Sequential(
        ScaleConvT2H(1, 4, scales),
        torch.nn.ReLU(),
        ScaleConvH2H(4, 3, scales, scale_size=2, conv_impl="fft"),
        ScaleProjection("max"),
    ).eval()


def record(kind, module, x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # trace's notes on Python ints taken from sizes
        if kind == "trace":
            return torch.jit.trace(module, x)
        if kind == "export":
            return torch.export.export(module, (x,)).module()
        compiled = torch.compile(module)
        compiled(x)
        return compiled


def eager(module, x):
    with torch.no_grad():
        return module(x)


@pytest.mark.parametrize("kind", ["trace", "export", "compile"])
def test_table1_network_records_with_the_same_outputs(kind):
    torch.manual_seed(0)
    net = Table1Net(10, scale_spec={"init_sigma_basis": 1.5, "init_isr": 4.0}, n_filters=4).eval()
    x = torch.randn(3, 1, 28, 28)
    recorded = record(kind, net, x)
    torch.testing.assert_close(eager(recorded, x), eager(net, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["trace", "export"])
def test_lifting_and_scale_to_scale_layers_record_with_the_same_outputs(kind):
    net = small_network()
    x = torch.randn(2, 1, 40, 40)
    plans = [layer.correlation_plan(x.shape, backward=False) for layer in (net[0], net[2])]
    impls = {impl for plan in plans for _, _, impl in plan}
    assert impls == {"direct", "fft"}  # both paths are recorded
    torch.testing.assert_close(eager(record(kind, net, x), x), eager(net, x), rtol=1e-5, atol=1e-6)


def test_recording_follows_a_state_loaded_after_eval():
    net, other = small_network(0), small_network(1)
    with torch.no_grad():
        other[0].scales.sigma.fill_(1.3)  # other scales, other kernel sizes
    other.eval()
    x = torch.randn(2, 1, 32, 32)
    net.load_state_dict(other.state_dict())
    exported = record("export", net, x)
    torch.testing.assert_close(eager(exported, x), eager(other, x), rtol=1e-5, atol=1e-6)
    assert net[0].kernel_sizes() == other[0].kernel_sizes() != small_network(0)[0].kernel_sizes()


def test_export_without_a_cached_basis_asks_for_eval():
    net = pickle.loads(pickle.dumps(small_network()))  # caches are not pickled
    x = torch.randn(1, 1, 24, 24)
    with pytest.raises(RuntimeError, match=r"no cached basis to export; call module.eval\(\) first"):
        torch.export.export(net, (x,))
    net.eval()
    torch.testing.assert_close(eager(record("export", net, x), x), eager(net, x), rtol=1e-5, atol=1e-6)


def test_training_mode_still_rebuilds_the_basis_with_gradients():
    net = small_network().train()
    x = torch.randn(1, 1, 24, 24)
    net(x).sum().backward()
    assert net[0].scales.sigma.grad is not None and net[0].scales.gamma.grad is not None


def test_scale_convolutions_export_to_onnx_on_the_direct_path():
    net = small_network()
    net[2].conv_impl = "direct"  # torch's ONNX exporter cannot translate the FFT path's complex spectra
    x = torch.randn(2, 1, 24, 24)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # raised inside torch's exporter
        program = torch.onnx.export(net, (x,), dynamo=True, verbose=False)
    (logits,) = program(x)  # run by onnxruntime
    torch.testing.assert_close(logits, eager(net, x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("conv_impl", ["auto", "fft"])
def test_export_with_a_dynamic_batch_reads_any_batch_size(conv_impl):
    net = small_network()
    net[0].conv_impl = net[2].conv_impl = conv_impl
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(net, (torch.randn(3, 1, 32, 32),), dynamic_shapes=({0: batch},))
    for n_images in (1, 2, 9):
        x = torch.randn(n_images, 1, 32, 32)
        torch.testing.assert_close(program.module()(x), eager(net, x), rtol=1e-5, atol=1e-6)


def test_a_saved_program_holds_whole_basis_tensors(tmp_path):
    net = small_network()
    program = torch.export.export(net, (torch.randn(1, 1, 24, 24),))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # "No complete tensor found in the group!"
        torch.export.save(program, tmp_path / "network.pt2")
    x = torch.randn(1, 1, 24, 24)
    torch.testing.assert_close(torch.export.load(tmp_path / "network.pt2").module()(x), eager(net, x))


@pytest.mark.parametrize("kind", ["trace", "export", "compile"])
def test_sesn_network_records_its_fused_inference_path_with_the_same_outputs(kind):
    # The MNIST body fuses each convolution with its max projection and pools by strided
    # maxima in inference; a recording in eval mode takes that path, with the same outputs.
    torch.manual_seed(0)
    net = build_module("sesn", n_classes=3, in_channels=1, n_scales=3, widths=(4, 6, 8)).eval()
    x = torch.randn(2, 1, 28, 28)
    recorded = record(kind, net, x)
    torch.testing.assert_close(eager(recorded, x), eager(net, x), rtol=1e-5, atol=1e-6)
    if kind == "export":
        # No concatenation of the scale axis: on the direct path nothing is concatenated (the
        # FFT path of these small maps joins the cached bases of its scales, a constant).
        direct = build_module(
            "sesn",
            n_classes=3,
            in_channels=1,
            n_scales=3,
            widths=(4, 6, 8),
            conv_kwargs={"conv_impl": "direct"},
        )
        direct.load_state_dict(net.state_dict())
        targets = {str(node.target) for node in torch.export.export(direct.eval(), (x,)).graph.nodes}
        assert "aten.maximum.default" in targets and "aten.cat.default" not in targets
