import dataclasses

import numpy as np
import pytest
import torch

from skscale._scales import log_uniform_scales
from skscale.nn import PARAMETERISATIONS, DISCONet, InternalScales, ScaleSpec, SESNNet, Table1Net
from skscale.nn.spec import resolve_scale_spec


def test_defaults_and_replace_keeps_what_is_not_given():
    spec = ScaleSpec()
    assert spec.as_dict() == dict(
        n_scales=3, parameterisation="isr", init_sigma_basis=2.0, init_isr=3.0, kernel_extent=2.0
    )
    changed = spec.replace(n_scales=5, init_isr=None, kernel_extent=4)
    assert changed == ScaleSpec(n_scales=5, kernel_extent=4.0)
    assert spec.replace(n_scales=None) is spec
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.n_scales = 4


def test_names_follow_the_constraint_table():
    assert ScaleSpec.names() == tuple(ScaleSpec.CONSTRAINTS)
    assert ScaleSpec.CONSTRAINTS["parameterisation"].options == tuple(PARAMETERISATIONS)


@pytest.mark.parametrize(
    "values, match",
    [
        (dict(n_scales=0), "n_scales must be an integer >= 1, got 0"),
        (dict(parameterisation="eq5"), "parameterisation must be one of .*, got 'eq5'"),
        (dict(init_sigma_basis=0.0), "init_sigma_basis must be a finite number > 0, got 0.0"),
        (dict(init_isr=1.0), "init_isr must be a finite number > 1, got 1.0"),
        (dict(kernel_extent=float("inf")), "kernel_extent must be a finite number > 0, got inf"),
    ],
)
def test_every_hyper_parameter_is_checked_by_name(values, match):
    with pytest.raises(ValueError, match=match):
        ScaleSpec(**values)
    with pytest.raises(ValueError, match=match):
        ScaleSpec().replace(**values)


def test_values_are_normalised():
    spec = ScaleSpec(n_scales=np.int64(4), init_isr=2)
    assert type(spec.n_scales) is int and type(spec.init_isr) is float


def test_replace_refuses_an_unknown_name():
    with pytest.raises(TypeError, match="'n_filters' is not a scale hyper-parameter"):
        ScaleSpec().replace(n_filters=8)


def test_resolve_scale_spec():
    defaults = ScaleSpec(n_scales=4, init_sigma_basis=1.5, init_isr=2.0)
    assert resolve_scale_spec(None, defaults) is defaults
    assert resolve_scale_spec({"n_scales": 2}, defaults) == defaults.replace(n_scales=2)
    full = ScaleSpec(n_scales=5)
    assert resolve_scale_spec(full, defaults) is full
    with pytest.raises(TypeError, match="scale_spec must be a ScaleSpec, a mapping"):
        resolve_scale_spec(3, defaults)


def test_internal_scales_start_where_the_spec_says():
    spec = ScaleSpec(n_scales=4, parameterisation="log", init_sigma_basis=1.5, init_isr=2.0)
    scales = InternalScales.from_spec(spec)
    assert isinstance(scales, InternalScales)
    expected = log_uniform_scales(4, 1.5, 2.0)
    np.testing.assert_allclose(scales().detach().numpy(), np.asarray(expected), rtol=1e-5)


@pytest.mark.parametrize(
    "network, expected",
    [
        (lambda spec: Table1Net(10, scale_spec=spec), ScaleSpec(init_sigma_basis=1.0, kernel_extent=4.0)),
        (
            lambda spec: SESNNet(10, scale_spec=spec),
            ScaleSpec(n_scales=4, init_sigma_basis=1.5, init_isr=2.0),
        ),
    ],
)
def test_networks_build_their_own_defaults_and_take_overrides(network, expected):
    net = network(None)
    np.testing.assert_allclose(
        net.scales().detach().numpy(),
        np.asarray(log_uniform_scales(expected.n_scales, expected.init_sigma_basis, expected.init_isr)),
        rtol=1e-5,
    )
    assert all(
        layer.kernel_extent == expected.kernel_extent
        for layer in net.modules()
        if hasattr(layer, "kernel_extent")
    )
    wider = network({"init_isr": 6.0, "kernel_extent": 4.0})
    assert wider.scales.isr == pytest.approx(6.0, rel=1e-5)
    assert len(wider.scales()) == expected.n_scales
    assert all(layer.kernel_extent == 4.0 for layer in wider.modules() if hasattr(layer, "kernel_extent"))


def test_disco_reads_its_scales_from_the_spec(tmp_path):
    net = DISCONet(10, data_home=tmp_path)
    expected = log_uniform_scales(4, 1.8, 2.0)
    np.testing.assert_allclose(net.basis.scales().detach().numpy(), np.asarray(expected), rtol=1e-5)
    three = DISCONet(10, data_home=tmp_path, scale_spec={"n_scales": 3, "init_isr": 2.0})
    assert len(three.basis.scales()) == 3
    assert torch.isfinite(three(torch.randn(2, 1, 28, 28))).all()
