"""The learned forms of InternalScales: Eq. 2 at the start, order and positivity by construction,
gradients, the authors' ISR formula and the log form's sensitivity, and loading earlier states."""

import math
import pickle

import pytest
import torch

from skscale._scales import MIN_SCALE_STEP, authors_gamma, authors_isr, log_uniform_scales
from skscale.nn import PARAMETERISATIONS, InternalScales, Table1Net

LEARNED = [p for p in PARAMETERISATIONS if p != "fixed"]


def assert_positive_and_increasing(scales, context):
    assert bool(torch.isfinite(scales).all()), (context, scales)
    assert bool((scales > 0).all()), (context, scales)
    assert bool((torch.diff(scales) > 0).all()), (context, scales)


@pytest.mark.parametrize("parameterisation", PARAMETERISATIONS)
@pytest.mark.parametrize("n_scales", [2, 3, 5])
@pytest.mark.parametrize("init_sigma_basis, init_isr", [(2.0, 3.0), (0.2, 1.5), (1.0, 8.0), (0.05, 1.1)])
def test_every_form_starts_from_eq2(parameterisation, n_scales, init_sigma_basis, init_isr):
    scales = InternalScales(n_scales, parameterisation, init_sigma_basis, init_isr)
    expected = torch.as_tensor(log_uniform_scales(n_scales, init_sigma_basis, init_isr), dtype=torch.float32)
    torch.testing.assert_close(scales(), expected)
    assert scales.sigma_basis == pytest.approx(init_sigma_basis, rel=1e-6)
    assert scales.isr == pytest.approx(init_isr, rel=1e-6)


@pytest.mark.parametrize("parameterisation", LEARNED)
@pytest.mark.parametrize("value", [0.0, 1e-3, -1.0, -10.0, -100.0, -1e4])
def test_constrained_forms_are_ordered_whatever_the_parameters(parameterisation, value):
    scales = InternalScales(4, parameterisation, init_sigma_basis=2.0, init_isr=3.0)
    with torch.no_grad():
        for parameter in scales.parameters():
            parameter.fill_(value)
    assert_positive_and_increasing(scales(), (parameterisation, value))
    assert scales.sigma_basis > 0 and scales.isr > 1


def collapsing_losses(n_scales, n_steps, seed=0):
    """Random weights on the log-scales, sorted so that they push the small scales up, the large
    ones down and (on average) all of them down: every step drives the scales towards zero and
    towards each other, through every raw parameter's zero."""
    generator = torch.Generator().manual_seed(seed)
    for _ in range(n_steps):
        yield torch.sort(torch.randn(n_scales, generator=generator)).values + 0.5


@pytest.mark.parametrize("parameterisation", LEARNED)
def test_large_random_steps_keep_the_scales_positive_and_increasing(parameterisation):
    scales = InternalScales(4, parameterisation, init_sigma_basis=0.2, init_isr=2.0)
    optimiser = torch.optim.SGD(scales.parameters(), lr=10.0)
    crossed = set()
    for step, weights in enumerate(collapsing_losses(4, 300)):
        optimiser.zero_grad()
        (weights * torch.log(scales())).sum().backward()
        optimiser.step()
        crossed.update(name for name, p in scales.named_parameters() if bool((p <= 0).any()))
        assert_positive_and_increasing(scales(), (parameterisation, step))
    # The steps did drive raw parameters through zero, where an unconstrained form breaks.
    assert crossed
    assert scales.sigma_basis < 0.2


def test_direct_scales_that_cross_swap_and_stay_positive_and_increasing():
    scales = InternalScales(4, "direct", init_sigma_basis=1.0, init_isr=8.0)
    with torch.no_grad():  # scale 1 above scale 3, scales 2 and 4 equal, one raw value negative
        scales.direct_scales.copy_(torch.tensor([-3.0, 9.0, 4.0, 4.0]))
    values = scales()
    assert_positive_and_increasing(values, "crossed")
    growth = (1 + MIN_SCALE_STEP) ** torch.arange(4.0)  # each rank's floor factor
    torch.testing.assert_close(values[1:], torch.tensor([4.0, 4.0, 9.0]) * growth[1:])
    assert 0 < float(values[0].detach()) < 1e-20  # softplus of -3 px at sharpness 20
    (values * torch.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    grad = scales.direct_scales.grad
    assert bool(torch.isfinite(grad).all())
    # Each parameter receives the weight of the position it now holds.
    torch.testing.assert_close(grad[1:], torch.tensor([4.0, 2.0, 3.0]) * growth[[3, 1, 2]])
    values = values.detach()
    assert scales.sigma_basis == pytest.approx(float(values[0]))
    assert scales.isr == pytest.approx(float(values[-1] / values[0]))


def test_direct_keeps_training_through_a_step_that_crosses_the_scales():
    scales = InternalScales(3, "direct", init_sigma_basis=2.0, init_isr=3.0)
    optimiser = torch.optim.SGD(scales.parameters(), lr=5.0)
    (scales() * torch.tensor([-1.0, 0.0, 1.0])).sum().backward()  # pulls the first up, the last down
    optimiser.step()
    raw = scales.direct_scales.detach()
    assert not bool((torch.diff(raw) > 0).all())  # the raw values left their order
    for _ in range(3):
        optimiser.zero_grad()
        values = scales()
        assert_positive_and_increasing(values, raw)
        values.sum().backward()
        assert bool(torch.isfinite(scales.direct_scales.grad).all())
        optimiser.step()


@pytest.mark.parametrize("parameterisation", LEARNED)
@pytest.mark.parametrize("init_sigma_basis", [0.1, 2.0])
def test_gradcheck_through_the_scales(parameterisation, init_sigma_basis):
    scales = InternalScales(3, parameterisation, init_sigma_basis=init_sigma_basis, init_isr=2.5).double()
    with torch.no_grad():  # away from the initial point, so that no root sits at a special value
        for parameter in scales.parameters():
            parameter.mul_(1.1)
    names = [name for name, _ in scales.named_parameters()]
    inputs = tuple(p.detach().clone().requires_grad_(True) for p in scales.parameters())

    def functional(*values):
        return torch.func.functional_call(scales, dict(zip(names, values)), ())

    assert torch.autograd.gradcheck(functional, inputs)


def test_authors_form_is_eq5_per_step():
    scales = InternalScales(4, "authors", init_sigma_basis=1.5, init_isr=3.0)
    assert float(scales.step_gamma.detach()) == pytest.approx(authors_gamma(3.0, 4), rel=1e-3)
    with torch.no_grad():
        scales.step_gamma.fill_(-0.8)
    ratio = 1 + MIN_SCALE_STEP + 0.64
    torch.testing.assert_close(scales(), 1.5 * ratio ** torch.arange(4.0))
    assert scales.isr == pytest.approx(ratio**3)
    assert scales.isr == pytest.approx(authors_isr(0.8, 4), rel=1e-3)
    assert authors_isr(authors_gamma(3.0, 4), 4) == pytest.approx(3.0)


def isr_sensitivity(parameterisation, name, n_scales, isr):
    scales = InternalScales(n_scales, parameterisation, init_sigma_basis=1.0, init_isr=isr).double()
    scales._isr().backward()
    return float(getattr(scales, name).grad)


# dISR / dgamma of the authors' form, (N_S - 1) r ** (N_S - 2) 2 gamma with r = 3 ** (1 / (N_S - 1)),
# over Eq. 5's 2 sqrt(2), at ISR 3.
@pytest.mark.parametrize(
    "n_scales, expected",
    [(3, math.sqrt(6 * (math.sqrt(3) - 1))), (4, 3 * 3 ** (2 / 3) * math.sqrt(3 ** (1 / 3) - 1) / 2**0.5)],
)
def test_authors_form_is_about_twice_as_sensitive_as_eq5_at_isr_3(n_scales, expected):
    authors = isr_sensitivity("authors", "step_gamma", n_scales, 3.0)
    eq5 = isr_sensitivity("isr", "gamma", n_scales, 3.0)
    assert eq5 == pytest.approx(2 * math.sqrt(2), rel=1e-4)  # dISR / dgamma = 2 gamma
    assert authors / eq5 == pytest.approx(expected, rel=1e-3)
    assert authors / eq5 == pytest.approx({3: 2.096, 4: 2.934}[n_scales], abs=1e-3)


def test_log_form_relative_sensitivity_does_not_vanish_near_isr_1():
    isrs = [1.01, 1.1, 3.0, 8.0]
    relative = []
    for isr in isrs:
        scales = InternalScales(3, "log", init_sigma_basis=1.5, init_isr=isr).double()
        torch.log(scales._isr() - 1).backward()
        relative.append(float(scales.log_isr_excess.grad))
        scales.zero_grad()
        torch.log(scales()[0]).backward()
        assert float(scales.log_sigma.grad) == pytest.approx(1.0)  # dlog(sigma_basis) / dlog_sigma
    # d log(ISR - 1) / d log_isr_excess = (ISR - 1 - eps) / (ISR - 1): 1 up to the floor.
    assert relative == pytest.approx([(isr - 1 - MIN_SCALE_STEP) / (isr - 1) for isr in isrs])
    assert min(relative) > 0.98
    # Eq. 5 for contrast: dISR / dgamma = 2 gamma vanishes near ISR = 1.
    eq5 = [isr_sensitivity("isr", "gamma", 3, isr) for isr in isrs]
    assert eq5[0] < 0.05 * eq5[-1]


@pytest.mark.parametrize("parameterisation", PARAMETERISATIONS)
def test_state_round_trips_for_every_form(parameterisation):
    source = InternalScales(3, parameterisation, init_sigma_basis=1.2, init_isr=4.0)
    if source.trainable:
        with torch.no_grad():
            for parameter in source.parameters():
                parameter.mul_(1.05)
    target = InternalScales(3, parameterisation)
    target.load_state_dict(source.state_dict())
    torch.testing.assert_close(target(), source())


def test_a_state_of_another_form_is_refused():
    with pytest.raises(RuntimeError, match="step_gamma"):
        InternalScales(3, "authors").load_state_dict(InternalScales(3, "isr").state_dict())


def legacy(state, **values):
    """A state as saved before the forms were constrained: no format, raw parameters."""
    state = {name: value for name, value in state.items() if not name.endswith("parameter_format")}
    state.update({name: torch.as_tensor(value, dtype=torch.float32) for name, value in values.items()})
    return state


@pytest.mark.parametrize("sigma", [0.3, 2.0])
def test_earlier_isr_state_loads_to_the_same_scales(sigma):
    state = legacy(InternalScales(3, "isr").state_dict(), sigma=[sigma], gamma=2.0)
    scales = InternalScales(3, "isr")
    scales.load_state_dict(state)
    torch.testing.assert_close(scales(), torch.tensor([sigma, sigma * 5**0.5, sigma * 5.0]))
    assert float(state["sigma"]) == pytest.approx(sigma)  # the caller's dict is untouched


def test_earlier_spacing_state_loads_to_the_same_scales():
    state = legacy(InternalScales(3, "spacing").state_dict(), sigma=[0.5], gap_roots=[1.0, -0.5])
    scales = InternalScales(3, "spacing")
    scales.load_state_dict(state)
    torch.testing.assert_close(scales(), torch.tensor([0.5, 1.5, 1.75]))


def test_earlier_state_with_a_negative_sigma_is_refused():
    state = legacy(InternalScales(3, "isr").state_dict(), sigma=[-0.00073])
    scales = InternalScales(3, "isr")
    with pytest.raises(RuntimeError, match=r"sigma: the state holds sigma_basis=\[-0.00073.*not positive"):
        scales.load_state_dict(state)


def test_earlier_network_state_loads():
    source = Table1Net(10)  # its shared scales are saved under every path to them
    sigmas = {name: [0.3] for name in source.state_dict() if name.endswith("sigma")}
    state = legacy(source.state_dict(), **sigmas)
    target = Table1Net(10)
    target.load_state_dict(state)
    assert target.scales.sigma_basis == pytest.approx(0.3)
    assert int(target.scales.parameter_format) == 3


def test_direct_state_of_format_2_loads_to_the_same_scales_once():
    """Before format 3 "direct_scales" held the scales: sub-pixel values would show a second conversion."""
    old = InternalScales(3, "direct").state_dict()
    old.update(direct_scales=torch.tensor([0.1, 0.3, 0.2]), parameter_format=torch.tensor(2))
    scales = InternalScales(3, "direct")
    scales.load_state_dict(old)
    torch.testing.assert_close(scales(), torch.tensor([0.1, 0.2, 0.3]))
    assert int(old["parameter_format"]) == 2 and float(old["direct_scales"][0]) == pytest.approx(0.1)
    again = InternalScales(3, "direct")
    again.load_state_dict(scales.state_dict())
    torch.testing.assert_close(again(), scales())
    without_format = legacy(InternalScales(3, "direct").state_dict(), direct_scales=[0.1, 0.2, 0.3])
    again.load_state_dict(without_format)
    torch.testing.assert_close(again(), torch.tensor([0.1, 0.2, 0.3]))


def test_direct_state_of_format_2_with_a_negative_scale_is_refused():
    old = InternalScales(3, "direct").state_dict()
    old.update(direct_scales=torch.tensor([-0.5, 1.0, 2.0]), parameter_format=torch.tensor(2))
    with pytest.raises(RuntimeError, match=r"direct_scales: the state holds scales=\[-0.5, .*not positive"):
        InternalScales(3, "direct").load_state_dict(old)


def as_pickled_before_the_table(scales, direct_values=None):
    """``scales`` laid out as the previous release pickled it: no form object; "direct" held its
    scales themselves with a non-persistent ``direct_order`` and format 2."""
    state = dict(scales.__dict__)
    del state["_form"], state["_form_tensor_names"]
    if direct_values is not None:
        values = torch.tensor(direct_values)
        state["_parameters"] = {"direct_scales": torch.nn.Parameter(values)}
        state["_buffers"] = {**state["_buffers"], "direct_order": torch.argsort(values)}
        state["_buffers"].pop("direct_ranks")
        state["_buffers"]["parameter_format"] = torch.tensor(2)
        state["_checked_key"] = None
    earlier = InternalScales.__new__(InternalScales)
    earlier.__dict__.update(state)
    return earlier


def test_modules_pickled_before_the_table_load():
    isr = InternalScales(3, "isr", init_sigma_basis=1.2, init_isr=4.0)
    clone = pickle.loads(pickle.dumps(as_pickled_before_the_table(isr)))
    torch.testing.assert_close(clone(), isr())
    direct = InternalScales.from_values([0.3, 0.1, 0.2], trainable=True)
    clone = pickle.loads(pickle.dumps(as_pickled_before_the_table(direct, [0.3, 0.1, 0.2])))
    torch.testing.assert_close(clone(), torch.tensor([0.3, 0.1, 0.2]))
    assert int(clone.parameter_format) == 3 and not hasattr(clone, "direct_order")
    assert set(clone.state_dict()) == {"direct_scales", "parameter_format", "scale_count"}
