"""skscale.utils.validation: the constraint objects, check_params and validate."""

import argparse

import numpy as np
import pytest
import torch

from skscale.utils.validation import (
    AnyOf,
    Boolean,
    Integer,
    Options,
    Pair,
    Real,
    Sequence,
    check_params,
    validate,
)

from .conftest import invalid_values, valid_value

# One constraint of every kind and shape the package declares, plus bounds on both sides.
CONSTRAINTS = {
    "integer": Integer(low=1),
    "integer_range": Integer(low=-2, high=5),
    "odd": Integer(low=1, odd=True),
    "unbounded_integer": Integer(),
    "real": Real(low=0, closed="neither"),
    "real_closed": Real(low=0),
    "unit_interval": Real(low=0, high=1, closed="neither"),
    "real_right": Real(low=0, high=1, closed="right"),
    "real_high": Real(high=3.0, closed="left"),
    "options": Options(("max", "mean")),
    "boolean": Boolean(),
    "pair": Pair(Real(low=0, closed="neither")),
    "pair_equal": Pair(Real(low=0, closed="neither"), allow_equal=True, allow_none=True),
    "integer_pair": Pair(Integer(low=0, high=10)),
    "sequence": Sequence(Integer(low=1)),
    "any_of": AnyOf(Real(low=1, closed="neither"), Options(("auto",))),
    "optional_real": Real(low=0, allow_none=True),
}


@pytest.mark.parametrize("name", CONSTRAINTS)
def test_derived_valid_value_passes_and_every_invalid_one_is_refused_naming_argument_and_value(name):
    constraint = CONSTRAINTS[name]
    assert constraint.is_valid(valid_value(constraint))
    validate(valid_value(constraint), name, constraint)
    invalid = invalid_values(constraint)
    assert invalid
    for value in invalid:
        assert not constraint.is_valid(value), value
        with pytest.raises(ValueError) as caught:
            constraint.check(value, name)
        assert str(caught.value) == f"{name} must be {constraint}, got {value!r}."


@pytest.mark.parametrize(
    "constraint, value, expected",
    [
        (Integer(low=0), np.int64(4), 4),
        (Integer(low=0), torch.tensor(3).item(), 3),
        (Real(low=0, closed="neither"), 2, 2.0),
        (Real(), np.float32(0.5), 0.5),
        (Real(), np.array(1.5), 1.5),
        (Real(), torch.tensor(2.5), 2.5),
        (Boolean(), np.bool_(True), True),
        (Pair(Real(low=0, closed="neither")), [1, 8], (1.0, 8.0)),
        (Pair(Integer(low=0)), np.array([2, 3]), (2, 3)),
        (Sequence(Integer(low=1)), [32, np.int64(63)], (32, 63)),
        (Sequence(Real()), (x for x in (1, 2)), (1.0, 2.0)),
        (AnyOf(Real(low=0, closed="neither"), Options(("scott",))), 1, 1.0),
        (AnyOf(Real(low=0, closed="neither"), Options(("scott",))), "scott", "scott"),
        (AnyOf(Integer(low=0), Real(low=0)), 2, 2),
        (Options(("max", "mean")), "mean", "mean"),
    ],
)
def test_check_returns_the_converted_value(constraint, value, expected):
    converted = constraint.check(value, "argument")
    assert converted == expected and type(converted) is type(expected)


@pytest.mark.parametrize(
    "constraint, inside, outside",
    [
        (Integer(low=1, high=3), [1, 2, 3], [0, 4]),
        (Integer(low=1, odd=True), [1, 3, 101], [2, 100, -1]),
        (Real(low=0, high=1), [0.0, 0.5, 1.0], [-1e-9, 1.0 + 1e-9]),
        (Real(low=0, high=1, closed="left"), [0.0, 0.999], [1.0]),
        (Real(low=0, high=1, closed="right"), [1e-12, 1.0], [0.0]),
        (Real(low=0, high=1, closed="neither"), [1e-12, 0.999], [0.0, 1.0]),
        (Pair(Real()), [(1, 2), (-3, 0)], [(2, 1), (1, 1)]),
        (Pair(Real(), allow_equal=True), [(1, 1), (1, 2)], [(2, 1)]),
    ],
)
def test_bounds_are_where_the_constraint_says(constraint, inside, outside):
    assert all(constraint.is_valid(value) for value in inside)
    assert not any(constraint.is_valid(value) for value in outside)


def test_none_is_accepted_only_where_allowed():
    for constraint_class, arguments in [
        (Integer, {}),
        (Real, {}),
        (Options, {"options": ("a",)}),
        (Boolean, {}),
        (Pair, {"item": Real()}),
        (Sequence, {"item": Real()}),
    ]:
        assert constraint_class(**arguments, allow_none=True).check(None, "x") is None
        with pytest.raises(ValueError, match="x must be .*, got None"):
            constraint_class(**arguments).check(None, "x")
    assert str(Real(low=0, allow_none=True)) == "a finite number >= 0 or None"


def test_options_refuse_unhashable_and_similar_values():
    mode = Options(("max", "mean"))
    for value in (["max"], {"max": 1}, "Max", " max", b"max"):
        with pytest.raises(ValueError, match=r"mode must be one of 'max', 'mean', got "):
            mode.check(value, "mode")


@pytest.mark.parametrize(
    "constraint, text",
    [
        (Integer(low=1), "an integer >= 1"),
        (Integer(low=1, high=9, odd=True), "an odd integer in [1, 9]"),
        (Integer(), "an integer"),
        (Real(low=0, closed="neither"), "a finite number > 0"),
        (Real(high=1, closed="left"), "a finite number < 1"),
        (Real(high=1), "a finite number <= 1"),
        (Real(low=0, high=1, closed="left"), "a finite number in [0, 1)"),
        (Real(low=0, high=1, closed="right"), "a finite number in (0, 1]"),
        (Options(("a", "b")), "one of 'a', 'b'"),
        (Boolean(), "True or False"),
        (Pair(Integer(low=0)), "a pair (low, high) with low < high, each an integer >= 0"),
        (Pair(Integer(low=0), allow_equal=True), "a pair (low, high) with low <= high, each an integer >= 0"),
        (Sequence(Integer(low=1)), "a non-empty sequence, each an integer >= 1"),
        (AnyOf(Real(low=1, closed="neither"), Options(("auto",))), "a finite number > 1 or one of 'auto'"),
    ],
)
def test_descriptions(constraint, text):
    assert str(constraint) == text


def test_real_refuses_an_unknown_closed_argument():
    with pytest.raises(ValueError, match="closed must be 'both', 'left', 'right' or 'neither', got 'open'"):
        Real(low=0, closed="open")


def test_check_params_converts_valid_values_and_skips_names_it_is_not_given():
    constraints = {
        "n_scales": Integer(low=1),
        "isr": Real(low=1, closed="neither"),
        "mode": Options(("max",)),
    }
    converted = check_params({"n_scales": np.int32(3), "isr": 2, "other": object()}, constraints)
    assert converted == {"n_scales": 3, "isr": 2.0}
    assert type(converted["n_scales"]) is int and type(converted["isr"]) is float


@pytest.mark.parametrize("name", CONSTRAINTS)
def test_check_params_names_the_first_invalid_parameter_and_its_value(name):
    constraints = {"fine": Integer(low=0), name: CONSTRAINTS[name]}
    for value in invalid_values(CONSTRAINTS[name]):
        with pytest.raises(ValueError) as caught:
            check_params({"fine": 1, name: value}, constraints)
        message = str(caught.value)
        assert message.startswith(f"{name} must be ") and message.endswith(f", got {value!r}.")


def test_argparse_type_checks_the_parsed_text():
    parser = argparse.ArgumentParser(prog="prog", exit_on_error=False)
    parser.add_argument("--n-scales", type=Integer(low=1).argparse_type(int))
    parser.add_argument("--isr", type=Real(low=1, closed="neither").argparse_type(float))
    parser.add_argument("--mode", type=Options(("max", "mean")).argparse_type())
    args = parser.parse_args(["--n-scales", "4", "--isr", "2.5", "--mode", "mean"])
    assert (args.n_scales, args.isr, args.mode) == (4, 2.5, "mean")
    assert type(args.isr) is float
    for option, text, expected in [
        ("--n-scales", "0", "must be an integer >= 1, got '0'"),
        ("--n-scales", "two", "must be an integer >= 1, got 'two'"),
        ("--isr", "1", "must be a finite number > 1, got '1'"),
        ("--mode", "min", "must be one of 'max', 'mean', got 'min'"),
    ]:
        with pytest.raises(argparse.ArgumentError, match=expected):
            parser.parse_args([option, text])


def test_argparse_type_exits_with_status_two_naming_the_option(capsys):
    parser = argparse.ArgumentParser(prog="prog")
    parser.add_argument("--n-scales", type=Integer(low=1).argparse_type(int))
    with pytest.raises(SystemExit) as caught:
        parser.parse_args(["--n-scales", "-3"])
    assert caught.value.code == 2
    assert "argument --n-scales: must be an integer >= 1, got '-3'" in capsys.readouterr().err
