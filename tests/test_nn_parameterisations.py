"""The table of forms behind InternalScales: the same checks for every form, and a form added to
the table is all InternalScales needs."""

import math
import warnings

import pytest
import torch

from skscale._scales import MIN_SCALE_STEP, log_uniform_scales
from skscale.nn import PARAMETERISATIONS, InternalScales, ScaleConvT2H
from skscale.nn.parameterisations import FORMS, ScaleForm

LEARNED = [name for name, form in FORMS.items() if form.trainable]


def assert_positive_and_increasing(scales, context):
    assert bool(torch.isfinite(scales).all()), (context, scales)
    assert bool((scales > 0).all()), (context, scales)
    assert bool((torch.diff(scales) > 0).all()), (context, scales)


def test_parameterisations_are_the_names_of_the_table():
    assert PARAMETERISATIONS == tuple(FORMS)
    assert PARAMETERISATIONS == ("fixed", "isr", "spacing", "direct", "authors", "ratios", "log")
    assert [name for name in FORMS if not FORMS[name].trainable] == ["fixed"]
    for name, form in FORMS.items():
        assert issubclass(form, ScaleForm), name
        assert f'``"{name}"``' in form.__doc__, name  # each form documents itself


@pytest.mark.parametrize("parameterisation", PARAMETERISATIONS)
@pytest.mark.parametrize(
    "n_scales, init_sigma_basis, init_isr", [(1, 1.7, 1.0), (2, 0.3, 1.5), (4, 2.0, 6.0)]
)
def test_every_form_starts_from_eq2_and_reads_back_its_arguments(
    parameterisation, n_scales, init_sigma_basis, init_isr
):
    scales = InternalScales(n_scales, parameterisation, init_sigma_basis, init_isr)
    expected = log_uniform_scales(n_scales, init_sigma_basis, init_isr)
    torch.testing.assert_close(scales(), torch.as_tensor(expected, dtype=torch.float32))
    assert scales.sigma_basis == pytest.approx(init_sigma_basis, rel=1e-6)
    assert scales.isr == pytest.approx(init_isr, rel=1e-6)
    # Round trip: the values read back build the same scales.
    again = InternalScales(n_scales, parameterisation, scales.sigma_basis, scales.isr)
    torch.testing.assert_close(again(), scales())
    # The form alone gives the same scales from its own initial tensors.
    form = FORMS[parameterisation](n_scales)
    tensors = {**form.initial_tensors(init_sigma_basis, init_isr), **form.unsaved_buffers()}
    torch.testing.assert_close(form.scales(tensors), scales())


@pytest.mark.parametrize("parameterisation", PARAMETERISATIONS)
def test_only_fixed_has_no_parameters(parameterisation):
    scales = InternalScales(3, parameterisation)
    assert scales.trainable == (parameterisation != "fixed")
    assert bool(list(scales.parameters())) == scales.trainable
    if not scales.trainable:
        assert not scales().requires_grad


@pytest.mark.parametrize("parameterisation", LEARNED)
@pytest.mark.parametrize("n_scales", [1, 2, 4])
def test_gradients_reach_every_trainable_parameter(parameterisation, n_scales):
    scales = InternalScales(n_scales, parameterisation, init_sigma_basis=1.5, init_isr=3.0)
    weights = torch.tensor([1.0, -2.0, 3.0, 0.5])[:n_scales]
    (scales() * weights).sum().backward()
    for name, parameter in scales.named_parameters():
        assert parameter.grad is not None, name
        assert bool(torch.isfinite(parameter.grad).all() and (parameter.grad != 0).all()), (
            name,
            parameter.grad,
        )


@pytest.mark.parametrize("parameterisation", LEARNED)
@pytest.mark.parametrize("spread", [0.5, 3.0, 10.0])
def test_random_parameters_give_positive_increasing_scales(parameterisation, spread):
    scales = InternalScales(5, parameterisation, init_sigma_basis=1.0, init_isr=4.0)
    initial = {name: parameter.detach().clone() for name, parameter in scales.named_parameters()}
    generator = torch.Generator().manual_seed(0)
    for trial in range(20):
        with torch.no_grad():
            for name, parameter in scales.named_parameters():
                parameter.copy_(initial[name] + spread * torch.randn(parameter.shape, generator=generator))
        values = scales().detach()
        assert_positive_and_increasing(values, (parameterisation, spread, trial))
        assert scales.sigma_basis == pytest.approx(float(values[0]))
        assert scales.isr == pytest.approx(float(values[-1] / values[0]), rel=1e-5)


def test_direct_from_values_closer_than_the_floor_start_apart_by_it():
    scales = InternalScales.from_values([2.0, 1.0, 1.00001], trainable=True)
    values = scales().detach()
    ascending = values[[1, 2, 0]]
    assert_positive_and_increasing(ascending, values)
    assert float(ascending[1] / ascending[0]) >= 1 + MIN_SCALE_STEP * 0.99


def test_direct_per_example_gradients_need_no_batching_fallback():
    scales = InternalScales.from_values([1.0, 3.0, 2.0], trainable=True).double()
    raw = scales.direct_scales.detach().clone()
    weights = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

    def loss(raw, weight):
        return (torch.func.functional_call(scales, {"direct_scales": raw}, ()) * weight).sum()

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns when vmap falls back to a loop
        per_example = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0))(raw, weights)
    for weight, gradient in zip(weights, per_example):
        scales.zero_grad()
        (scales() * weight).sum().backward()
        torch.testing.assert_close(gradient, scales.direct_scales.grad)


class UniformLogStep(ScaleForm):
    """``"uniform_log_step"`` (a test form): scales ``exp(log_sigma + i * log_step)``, Eq. 2 in logs."""

    def initial_tensors(self, init_sigma_basis, init_isr):
        log_step = math.log(init_isr) / max(self.n_scales - 1, 1)
        return {"log_sigma": torch.tensor(math.log(init_sigma_basis)), "log_step": torch.tensor(log_step)}

    def scales(self, tensors):
        positions = torch.arange(self.n_scales, dtype=tensors["log_step"].dtype)
        return torch.exp(tensors["log_sigma"] + positions * tensors["log_step"])


@pytest.fixture
def registered_form():
    FORMS["uniform_log_step"] = UniformLogStep
    try:
        yield "uniform_log_step"
    finally:
        del FORMS["uniform_log_step"]


def test_a_form_added_to_the_table_is_all_internal_scales_needs(registered_form):
    scales = InternalScales(3, registered_form, init_sigma_basis=2.0, init_isr=4.0)
    torch.testing.assert_close(scales(), torch.tensor([2.0, 4.0, 8.0]))
    assert scales.sigma_basis == pytest.approx(2.0) and scales.isr == pytest.approx(4.0)
    assert {name for name, _ in scales.named_parameters()} == {"log_sigma", "log_step"}
    assert scales.trainable and "parameterisation='uniform_log_step'" in repr(scales)
    # It trains inside a layer, and its state round-trips.
    layer = ScaleConvT2H(1, 2, scales)
    layer(torch.randn(1, 1, 20, 20)).square().sum().backward()
    assert scales.log_step.grad is not None and float(scales.log_step.grad) != 0
    with torch.no_grad():
        scales.log_step.add_(0.1)
    copy = InternalScales(3, registered_form)
    copy.load_state_dict(scales.state_dict())
    torch.testing.assert_close(copy(), scales())


def test_a_name_missing_from_the_table_is_refused():
    assert "uniform_log_step" not in FORMS
    with pytest.raises(
        ValueError, match="parameterisation must be one of 'fixed', .* got 'uniform_log_step'"
    ):
        InternalScales(3, "uniform_log_step")
