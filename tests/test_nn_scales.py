import pickle

import pytest
import torch

from skscale._scales import MIN_SCALE_STEP
from skscale.nn import PARAMETERISATIONS, InternalScales, Table1Net


@pytest.mark.parametrize("parameterisation", PARAMETERISATIONS)
def test_every_parameterisation_starts_from_eq2(parameterisation):
    scales = InternalScales(3, parameterisation, init_sigma_basis=2.0, init_isr=3.0)
    expected = torch.tensor([2.0, 2.0 * 3**0.5, 6.0])
    torch.testing.assert_close(scales(), expected)
    assert scales.sigma_basis == pytest.approx(2.0)
    assert scales.isr == pytest.approx(3.0)


@pytest.mark.parametrize(
    "parameterisation, names",
    [
        ("fixed", set()),
        ("isr", {"sigma", "gamma"}),
        ("spacing", {"sigma", "gap_roots"}),
        ("direct", {"direct_scales"}),
        ("authors", {"sigma", "step_gamma"}),
        ("ratios", {"sigma", "ratio_roots"}),
        ("log", {"log_sigma", "log_isr_excess"}),
    ],
)
def test_trainable_parameters(parameterisation, names):
    scales = InternalScales(4, parameterisation)
    assert {name for name, _ in scales.named_parameters()} == names
    assert scales.trainable == bool(names)


def test_isr_parameterisation_is_eq5_with_its_floor():
    scales = InternalScales(3, "isr", init_sigma_basis=1.5, init_isr=5.0)
    assert float((1 + MIN_SCALE_STEP + scales.gamma**2).detach()) == pytest.approx(5.0)
    with torch.no_grad():
        scales.gamma.fill_(-1.0)  # the sign of gamma does not matter: ISR = 1 + eps + gamma^2
    isr = 2.0 + MIN_SCALE_STEP
    torch.testing.assert_close(scales(), torch.tensor([1.5, 1.5 * isr**0.5, 1.5 * isr]))
    assert scales.isr == pytest.approx(isr)


def test_spacing_keeps_scales_increasing_whatever_the_parameters():
    scales = InternalScales(4, "spacing")
    with torch.no_grad():
        scales.gap_roots.copy_(torch.tensor([-0.5, 0.3, -2.0]))
    assert bool((torch.diff(scales()) > 0).all())


def test_single_scale_is_valid():
    for parameterisation in PARAMETERISATIONS:
        scales = InternalScales(1, parameterisation, init_sigma_basis=1.7, init_isr=1.0)
        torch.testing.assert_close(scales(), torch.tensor([1.7]))
        assert scales.isr == 1.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_scales=0), "n_scales must be an integer >= 1, got 0"),
        (dict(n_scales=2.5), "n_scales must be an integer >= 1, got 2.5"),
        (dict(parameterisation="eq5"), "parameterisation must be one of 'fixed', .*'log', got 'eq5'"),
        (dict(init_sigma_basis=0.0), "init_sigma_basis must be a finite number > 0, got 0.0"),
        (dict(init_sigma_basis=float("nan")), "init_sigma_basis must be a finite number > 0, got nan"),
        (dict(init_isr=1.0), "init_isr must be a finite number > 1, got 1.0"),
        (dict(init_isr=1.00005), "init_isr must be a finite number > 1.0001, got 1.00005"),
        (dict(parameterisation="fixed", init_isr=0.5), "init_isr must be a finite number > 1, got 0.5"),
        (dict(parameterisation="ratios", init_isr=1.0001), r"init_isr must be a finite number > 1.0002\d*, "),
        (dict(n_scales=1, init_isr=float("inf")), "init_isr must be a finite number, got inf"),
    ],
)
def test_invalid_arguments_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        InternalScales(**kwargs)


@pytest.mark.parametrize("parameterisation", [p for p in PARAMETERISATIONS if p != "fixed"])
def test_gradients_reach_every_scale_parameter(parameterisation):
    scales = InternalScales(3, parameterisation)
    (scales() * torch.tensor([1.0, -2.0, 3.0])).sum().backward()
    for name, parameter in scales.named_parameters():
        assert parameter.grad is not None and bool((parameter.grad != 0).all()), name


def test_state_key_changes_on_optimiser_step_and_load():
    scales = InternalScales(3, "isr")
    key = scales.state_key()
    assert scales.state_key() == key
    optimiser = torch.optim.SGD(scales.parameters(), lr=0.1)
    scales().sum().backward()
    optimiser.step()
    assert scales.state_key() != key
    key = scales.state_key()
    scales.load_state_dict(InternalScales(3, "isr").state_dict())
    assert scales.state_key() != key


def test_from_values_and_pickle():
    fixed = InternalScales.from_values([1.5, 1.89, 2.38, 3.0])
    torch.testing.assert_close(fixed(), torch.tensor([1.5, 1.89, 2.38, 3.0]))
    assert not fixed.trainable
    direct = InternalScales.from_values([1.0, 2.0], trainable=True)
    assert direct.parameterisation == "direct"
    clone = pickle.loads(pickle.dumps(fixed))
    torch.testing.assert_close(clone(), fixed())
    with pytest.raises(ValueError, match="values must be a finite number > 0, got -2.0"):
        InternalScales.from_values([1.0, -2.0])
    with pytest.raises(ValueError, match="distinct"):
        InternalScales.from_values([2.0, 2.0])
    for trainable in (False, True):  # scales may come in any order
        unsorted = InternalScales.from_values([3.0, 1.0, 2.0], trainable=trainable)
        torch.testing.assert_close(unsorted(), torch.tensor([3.0, 1.0, 2.0]))
    # Trainable ones keep that order: parameters that cross swap the scales they stand for.
    with torch.no_grad():
        unsorted.direct_scales.mul_(2.0)
    torch.testing.assert_close(unsorted(), torch.tensor([6.0, 2.0, 4.0]))
    with torch.no_grad():
        unsorted.direct_scales.copy_(torch.tensor([3.0, 2.5, 2.0]))
    growth = (1 + MIN_SCALE_STEP) ** torch.arange(3.0)  # the factor floor of the ranks 0, 1, 2
    torch.testing.assert_close(unsorted(), torch.tensor([3.0, 2.0, 2.5]) * growth[[2, 0, 1]])
    clone = pickle.loads(pickle.dumps(unsorted))
    torch.testing.assert_close(clone(), unsorted())


@pytest.mark.parametrize("parameterisation", PARAMETERISATIONS)
def test_state_of_another_number_of_scales_is_refused(parameterisation):
    three = InternalScales(3, parameterisation)
    four = InternalScales(4, parameterisation)
    before = four().detach().clone()
    with pytest.raises(RuntimeError, match="n_scales=3 internal scales,.*has n_scales=4"):
        four.load_state_dict(three.state_dict())
    with pytest.raises(RuntimeError, match="n_scales=3"):
        four.load_state_dict(three.state_dict(), strict=False)
    torch.testing.assert_close(four(), before)


def test_isr_state_of_another_number_of_scales_is_refused_inside_a_network():
    source, target = Table1Net(10), Table1Net(10, scale_spec={"n_scales": 4})
    with pytest.raises(RuntimeError, match=r"scales\.scale_count: the state holds n_scales=3"):
        target.load_state_dict(source.state_dict())


def test_state_with_the_same_count_or_without_it_still_loads():
    source = InternalScales(3, "isr", init_sigma_basis=1.2, init_isr=4.0)
    target = InternalScales(3, "isr")
    target.load_state_dict(source.state_dict())
    torch.testing.assert_close(target(), source())
    # A state saved before the count was part of it loads as before, strictly.
    legacy = {name: value for name, value in source.state_dict().items() if name != "scale_count"}
    fresh = InternalScales(3, "isr")
    fresh.load_state_dict(legacy)
    torch.testing.assert_close(fresh(), source())
    assert int(fresh.scale_count) == 3
    with pytest.raises(RuntimeError, match="Unexpected key"):
        fresh.load_state_dict({**source.state_dict(), "extra": torch.zeros(1)})
