"""skscale.nn.models: the paper's networks (Table1Net, SESNNet, PlainCNN)."""

import pytest
import torch

from skscale.nn import PlainCNN, ScaleSpec, SESNNet, Table1Net, count_parameters


@pytest.mark.parametrize(
    "network, shape, expected",
    [
        (lambda: Table1Net(10), (3, 1, 28, 28), (3, 10)),
        (
            lambda: Table1Net(4, in_channels=3, scale_spec={"n_scales": 2}, n_filters=5),
            (2, 3, 20, 17),
            (2, 4),
        ),
        (lambda: SESNNet(10, widths=(4, 6, 8), hidden=16), (3, 1, 28, 28), (3, 10)),
        (
            lambda: SESNNet(5, in_channels=3, scale_spec={"n_scales": 2}, widths=(4, 6, 8), hidden=16),
            (2, 3, 40, 40),
            (2, 5),
        ),
        (lambda: PlainCNN(10), (3, 1, 28, 28), (3, 10)),
        (lambda: PlainCNN(3, in_channels=4, widths=(4, 5), kernel_size=3), (2, 4, 11, 13), (2, 3)),
    ],
    ids=["table1", "table1-rgb", "sesn", "sesn-rgb-40px", "cnn", "cnn-4-channels"],
)
def test_images_of_any_size_give_one_logit_per_class(network, shape, expected):
    model = network().eval()
    with torch.no_grad():
        logits = model(torch.randn(shape))
    assert logits.shape == expected and torch.isfinite(logits).all()


@pytest.mark.parametrize(
    "n_filters, in_channels, n_classes",
    [(16, 1, 10), (8, 3, 5), (1, 1, 2)],
)
def test_table1_has_the_parameter_count_of_its_docstring(n_filters, in_channels, n_classes):
    network = Table1Net(n_classes, in_channels, n_filters=n_filters)
    expected = n_filters * (in_channels * 10 + 1 + 2 + 16 * n_classes) + n_classes + 2
    assert count_parameters(network) == expected
    if (n_filters, in_channels, n_classes) == (16, 1, 10):
        assert expected == 2780


@pytest.mark.parametrize(
    "parameterisation, scale_parameters", [("isr", 2), ("authors", 2), ("fixed", 0), ("direct", 4)]
)
def test_sesn_has_the_parameter_count_of_a_7x7_cnn_plus_its_scale_parameters(
    parameterisation, scale_parameters
):
    sesn = SESNNet(10, scale_spec={"parameterisation": parameterisation})
    assert count_parameters(sesn) == 494_549 + scale_parameters
    assert count_parameters(PlainCNN(10)) == 494_549
    assert count_parameters(sesn.scales) == scale_parameters
    assert sesn.scales.n_scales == 4  # SESN's four scales 1.5 * 2 ** (i / 3)
    torch.testing.assert_close(
        sesn.scales().detach().double(),
        1.5 * 2.0 ** (torch.arange(4, dtype=torch.float64) / 3),
        rtol=1e-5,
        atol=0,
    )


def test_sesn_convolutions_share_one_set_of_internal_scales():
    network = SESNNet(10, widths=(2, 3, 4), hidden=8)
    convolutions = [module for module in network.features if hasattr(module, "forward_max_projected")]
    assert len(convolutions) == 3 and all(conv.scales is network.scales for conv in convolutions)


@pytest.mark.parametrize(
    "network",
    [
        lambda: Table1Net(3, scale_spec=ScaleSpec(init_sigma_basis=1.0, init_isr=2.0), n_filters=4),
        lambda: SESNNet(
            3, scale_spec=ScaleSpec(init_sigma_basis=1.0, init_isr=2.0), widths=(4, 6, 8), hidden=16
        ),
        lambda: PlainCNN(3, widths=(4, 6, 8), hidden=16),
    ],
    ids=["table1", "sesn", "cnn"],
)
def test_backward_reaches_every_trainable_parameter_including_the_scales(network):
    model = network().train()
    x = torch.randn(4, 1, 20, 20)
    loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    missing = [
        name for name, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()
    ]
    assert not missing
    if hasattr(model, "scales"):
        assert all(p.grad.abs().sum() > 0 for p in model.scales.parameters())
        assert len(list(model.scales.parameters())) == 2


def test_fixed_scales_have_no_gradient_and_stay_put():
    model = Table1Net(3, scale_spec=ScaleSpec(parameterisation="fixed", init_sigma_basis=1.0, init_isr=2.0))
    before = model.scales().clone()
    model(torch.randn(2, 1, 16, 16)).sum().backward()
    assert not list(model.scales.parameters())
    torch.testing.assert_close(model.scales(), before, rtol=0, atol=0)


def test_table1_arguments_reach_its_layers():
    network = Table1Net(
        7,
        in_channels=2,
        scale_spec={"n_scales": 4, "kernel_extent": 3.0},
        n_filters=6,
        pooled_size=3,
        conv_kwargs={"stride": 2},
    )
    assert network.scales.n_scales == 4
    assert network.conv.out_channels == 6 and network.conv.stride == 2 and network.conv.kernel_extent == 3.0
    assert network.norm.num_features == 6
    assert network.classifier.in_features == 6 * 3 * 3 and network.classifier.out_features == 7


def test_sesn_arguments_reach_its_layers():
    network = SESNNet(4, widths=(3, 5, 7), hidden=9, dropout=0.25, max_order=2, index_set="total")
    convolutions = [module for module in network.features if hasattr(module, "forward_max_projected")]
    assert [conv.out_channels for conv in convolutions] == [3, 5, 7]
    assert all(conv.max_order == 2 and conv.index_set == "total" for conv in convolutions)
    linear, dropout = network.head[1], network.head[4]
    assert linear.in_features == 4 * 7 and linear.out_features == 9 and dropout.p == 0.25
    assert network.head[-1].out_features == 4
