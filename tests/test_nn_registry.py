"""skscale.nn.registry: registering architectures, routing their arguments, counting parameters."""

import pytest
import torch
from torch import nn

from skscale.nn import ARCHITECTURES, PlainCNN, SESNNet, Table1Net, build_module, count_parameters
from skscale.nn.registry import builder_arguments, register_architecture


@pytest.fixture
def registered():
    """Register builders for one test only: ``registered(name, builder)``."""
    added = []

    def register(name, builder):
        added.append(name)
        return register_architecture(name)(builder)

    yield register
    for name in added:
        ARCHITECTURES.pop(name, None)


class Recorder(nn.Module):
    """A builder that keeps what it was given; only ``n_scales`` of the shared hyper-parameters."""

    def __init__(self, n_classes, in_channels=1, n_scales=3, *, width=2):
        super().__init__()
        self.given = {
            "n_classes": n_classes,
            "in_channels": in_channels,
            "n_scales": n_scales,
            "width": width,
        }
        self.linear = nn.Linear(in_channels, n_classes)


def open_builder(n_classes, in_channels, **kwargs):
    """A function builder that accepts any argument."""
    module = nn.Linear(in_channels, n_classes)
    module.given = kwargs
    return module


SHARED = {"n_scales": 5, "init_isr": 4.0, "parameterisation": "log", "kernel_extent": 3.0}


def test_the_paper_networks_are_registered_under_their_names():
    assert ARCHITECTURES["table1"] is Table1Net
    assert ARCHITECTURES["sesn"] is SESNNet
    assert ARCHITECTURES["cnn"] is PlainCNN


def test_register_architecture_returns_the_builder_and_makes_it_buildable(registered):
    assert registered("test-recorder", Recorder) is Recorder
    assert ARCHITECTURES["test-recorder"] is Recorder
    module = build_module("test-recorder", n_classes=4, in_channels=2)
    assert isinstance(module, Recorder)
    assert module.given == {"n_classes": 4, "in_channels": 2, "n_scales": 3, "width": 2}


@pytest.mark.parametrize("name", ["", None, 3])
def test_register_architecture_refuses_a_name_that_is_not_a_non_empty_string(name):
    with pytest.raises(ValueError, match=f"name must be a non-empty string, got {name!r}"):
        register_architecture(name)


def test_register_architecture_refuses_a_builder_that_cannot_be_called():
    decorator = register_architecture("test-not-callable")
    with pytest.raises(TypeError, match="an architecture must be callable, got 3"):
        decorator(3)
    assert "test-not-callable" not in ARCHITECTURES


def test_defaults_reach_a_builder_only_where_its_signature_names_them(registered):
    registered("test-recorder", Recorder)
    module = build_module("test-recorder", n_classes=3, in_channels=1, defaults=SHARED)
    assert module.given == {"n_classes": 3, "in_channels": 1, "n_scales": 5, "width": 2}


def test_arguments_override_defaults_and_reach_keyword_only_parameters():
    module = build_module(Recorder, n_classes=3, in_channels=1, defaults=SHARED, n_scales=7, width=9)
    assert module.given["n_scales"] == 7 and module.given["width"] == 9


def test_unknown_argument_is_refused_naming_it_the_builder_and_what_it_accepts(registered):
    registered("test-recorder", Recorder)
    with pytest.raises(ValueError) as caught:
        build_module("test-recorder", n_classes=3, in_channels=1, defaults=SHARED, widht=4)
    assert str(caught.value) == (
        "module__widht is not an argument of Recorder (architecture='test-recorder'); "
        "it accepts n_scales, width."
    )
    # A default the builder does not name is dropped silently; an argument is not.
    with pytest.raises(
        ValueError, match=r"module__init_isr is not an argument of Recorder \(architecture='Recorder'\)"
    ):
        build_module(Recorder, n_classes=3, in_channels=1, init_isr=4.0)


def test_a_builder_that_accepts_nothing_more_says_so():
    def linear(n_classes, in_channels):
        return nn.Linear(in_channels, n_classes)

    assert isinstance(build_module(linear, n_classes=2, in_channels=1, defaults=SHARED), nn.Linear)
    with pytest.raises(ValueError, match="module__bias is not an argument of .*linear.*; it accepts none"):
        build_module(linear, n_classes=2, in_channels=1, bias=False)


def test_a_kwargs_builder_gets_every_default_and_every_argument(registered):
    registered("test-open", open_builder)
    module = build_module("test-open", n_classes=2, in_channels=3, defaults=SHARED, n_scales=2, anything=1)
    assert module.given == {**SHARED, "n_scales": 2, "anything": 1}
    assert module.out_features == 2 and module.in_features == 3


def test_builder_arguments():
    assert builder_arguments(Recorder) == ["n_scales", "width"]
    assert builder_arguments(open_builder) is None
    assert "scale_spec" in builder_arguments(Table1Net) and "n_classes" not in builder_arguments(Table1Net)
    assert "scale_spec" not in builder_arguments(PlainCNN)


@pytest.mark.parametrize("architecture", ["resnet", "Table1", ""])
def test_unknown_architecture_name_is_refused_listing_the_registered_ones(architecture):
    with pytest.raises(
        ValueError, match=rf"architecture must be one of \[.*'cnn'.*'table1'.*\], got '{architecture}'"
    ):
        build_module(architecture, n_classes=2, in_channels=1)


def test_architecture_that_is_neither_a_name_nor_callable_is_refused():
    with pytest.raises(
        ValueError, match=r"architecture must be a registered name \(\[.*'sesn'.*\]\) or a callable, got 3"
    ):
        build_module(3, n_classes=2, in_channels=1)


def test_plain_cnn_ignores_the_scale_defaults_the_classifier_passes():
    plain = build_module("cnn", n_classes=10, in_channels=1, defaults=SHARED)
    assert isinstance(plain, PlainCNN)
    table1 = build_module("table1", n_classes=10, in_channels=1, defaults=SHARED)
    assert table1.scales.n_scales == 5 and table1.scales.isr == pytest.approx(4.0)
    assert table1.scales.parameterisation == "log"


class Shared(nn.Module):
    """Two layers sharing one weight, one buffer and one frozen parameter."""

    def __init__(self):
        super().__init__()
        self.first = nn.Linear(3, 3)  # 12
        self.second = nn.Linear(3, 3)
        self.second.weight = self.first.weight  # only its bias (3) is new
        self.frozen = nn.Parameter(torch.zeros(5), requires_grad=False)
        self.register_buffer("running", torch.zeros(7))


def test_count_parameters_counts_shared_parameters_once_and_trainable_ones_by_default():
    module = Shared()
    assert count_parameters(module) == 12 + 3
    assert count_parameters(module, trainable_only=False) == 12 + 3 + 5
    assert count_parameters(nn.Sequential(module, module)) == 15


def test_count_parameters_counts_the_internal_scales_shared_by_every_convolution_once():
    network = SESNNet(10, widths=(2, 3, 4), hidden=8)
    every_path = dict(network.named_parameters(remove_duplicate=False))
    scale_paths = [name for name in every_path if name.split(".")[-2] == "scales"]
    assert len(scale_paths) == 4 * 2  # the network's and its 3 convolutions' paths to sigma_basis and gamma
    others = sum(p.numel() for name, p in every_path.items() if name not in scale_paths)
    assert count_parameters(network) == others + 2
