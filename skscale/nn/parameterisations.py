"""The forms of the internal scales, fixed or learnable, one class each (paper Eqs. 2 and 5).

A *form* says which tensors hold the internal scales and how the scales follow from them:
:class:`~skscale.nn.InternalScales` registers the tensors a form asks for (parameters when the
form is trainable, buffers otherwise) under the form's names, so that the state dict keeps
those names, and asks the form for the scales, ``sigma_basis`` and the ISR on every call.

All forms live in :data:`FORMS`, keyed by the ``parameterisation`` string; adding a class there
is all :class:`~skscale.nn.InternalScales` needs to offer a new form. :data:`PARAMETERISATIONS`
is the tuple of its names at import time.

With ``eps = MIN_SCALE_STEP`` (see :mod:`skscale._scales`), every learned form keeps
``sigma_basis > 0`` and the scales strictly increasing for every value of its parameters:
neighbouring scales are at least a factor ``1 + eps`` apart (``"ratios"``, ``"authors"``,
``"direct"``), the ISR is at least ``1 + eps`` (``"isr"``, ``"log"``) or the gaps at least
``eps`` pixels (``"spacing"``). The floor keeps the order in float32, where ``1 + gamma ** 2``
rounds to 1 for ``|gamma| < 2.4e-4``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .._scales import MIN_SCALE_STEP, gamma_from_isr, geometric_scales, isr_from_gamma, log_uniform_scales

__all__ = [
    "FORMS",
    "PARAMETERISATIONS",
    "SIGMA_SOFTNESS",
    "ScaleForm",
    "FixedForm",
    "IsrForm",
    "SpacingForm",
    "DirectForm",
    "AuthorsForm",
    "RatiosForm",
    "LogForm",
]

#: ``beta`` of the softplus that keeps ``sigma_basis`` positive, per pixel: the softplus is the
#: identity above 1 px (torch switches to it exactly there) and within 3.4e-4 px of it above 0.25 px.
SIGMA_SOFTNESS = 20.0

_SOFTPLUS_THRESHOLD = 20.0  # torch's default: softplus(x) == x once beta * x exceeds it


def _positive_sigma(raw):
    """``softplus(raw)`` of sharpness :data:`SIGMA_SOFTNESS`, at least the dtype's smallest normal number."""
    # Clamped: float32 rounds the softplus to 0 below -87 / beta.
    return nn.functional.softplus(raw, beta=SIGMA_SOFTNESS, threshold=_SOFTPLUS_THRESHOLD).clamp_min(
        torch.finfo(raw.dtype).tiny
    )


def _raw_sigma(sigma):
    """Inverse of :func:`_positive_sigma` for a positive tensor (the identity where torch's is)."""
    scaled = SIGMA_SOFTNESS * sigma
    inverse = sigma + torch.log(-torch.expm1(-scaled.clamp_max(_SOFTPLUS_THRESHOLD))) / SIGMA_SOFTNESS
    return torch.where(scaled > _SOFTPLUS_THRESHOLD, sigma, inverse)


def _root_above_floor(value):
    """``r`` with ``MIN_SCALE_STEP + r**2 == value`` (0 where ``value`` is at or below the floor)."""
    return torch.sqrt((value - MIN_SCALE_STEP).clamp_min(0.0))


def _step_above_floor(root):
    """``1 + eps + root**2``: a ratio above ``1 + eps`` (Eq. 5 with the floor)."""
    return isr_from_gamma(root) + MIN_SCALE_STEP


class ScaleForm:
    """One way of writing the internal scales as a function of tensors.

    A subclass names its tensors in :meth:`initial_tensors` and computes the scales from them
    in :meth:`scales`; the other methods have defaults. Forms hold no tensors themselves, only
    the number of scales, so that ``torch.func.functional_call`` and ``load_state_dict`` act
    on the module that owns the tensors.

    Parameters
    ----------
    n_scales : int
        Number of internal scales ``N_S`` (already validated).

    Attributes
    ----------
    trainable : bool
        Class attribute: whether the tensors are trainable parameters (``True``) or buffers.

    Examples
    --------
    >>> form = FORMS["isr"](3)
    >>> tensors = form.initial_tensors(init_sigma_basis=2.0, init_isr=4.0)
    >>> sorted(tensors)
    ['gamma', 'sigma']
    >>> [round(s, 3) for s in form.scales(tensors).tolist()]
    [2.0, 4.0, 8.0]
    """

    trainable = True

    def __init__(self, n_scales):
        self.n_scales = n_scales

    @classmethod
    def lowest_init_isr(cls, n_scales, init_sigma_basis):
        """The ``init_isr`` that the initial ISR must exceed when ``n_scales > 1``.

        1 by default; a form with a floor on its steps raises it so that Eq. 2's initial
        scales can be represented.
        """
        return 1

    def initial_tensors(self, init_sigma_basis, init_isr):
        """The form's tensors, by name, at the scales of Eq. 2 for ``init_sigma_basis`` and ``init_isr``.

        Returns
        -------
        dict of str to torch.Tensor
            Registered by the owning module as parameters (``trainable``) or buffers, and
            saved with its state.
        """
        raise NotImplementedError

    def unsaved_buffers(self):
        """Further tensors the form reads but the state does not hold (by name); none by default."""
        return {}

    def scales(self, tensors):
        """The internal scales, a 1-D tensor of length ``n_scales``, from the form's tensors."""
        raise NotImplementedError

    def sigma_basis(self, tensors):
        """The first scale, as a tensor of shape ``(1,)``."""
        return self.scales(tensors)[:1]

    def isr(self, tensors):
        """The internal scale range, last over first scale, as a 0-d tensor (``n_scales > 1``)."""
        scales = self.scales(tensors)
        return scales[-1] / scales[0]

    def set_scales(self, tensors, values):
        """Set the tensors in place so that :meth:`scales` returns ``values`` (only some forms can)."""
        raise NotImplementedError(f"{type(self).__name__} cannot be set to given scale values.")

    def upgrade_state(self, state_dict, prefix, saved_format):
        """Rewrite, in ``state_dict``, the tensors of a state saved in an earlier ``saved_format``.

        Returns
        -------
        error : str or None
            Why the state cannot be represented, or ``None`` once it is rewritten (or needed
            nothing).
        """
        return None

    def _initial_scales(self, init_sigma_basis, init_isr):
        """Eq. 2's scales in the default dtype, the common start of every form."""
        scales = log_uniform_scales(self.n_scales, init_sigma_basis, init_isr)
        return torch.as_tensor(scales, dtype=torch.get_default_dtype())


def _not_positive_error(key, values, what):
    """Why a state's ``values`` at ``key`` cannot be loaded (one is not positive), or ``None``."""
    if bool(torch.isfinite(values).all() and (values > 0).all()):
        return None
    return (
        f"{key}: the state holds {what}={values.tolist()!r}, a value that is not positive, saved "
        "before the learned scales were kept positive; it cannot be loaded."
    )


class FixedForm(ScaleForm):
    """``"fixed"``: nothing trainable, the SESN baseline; the scales are the buffer ``fixed_scales``."""

    trainable = False

    def initial_tensors(self, init_sigma_basis, init_isr):
        return {"fixed_scales": self._initial_scales(init_sigma_basis, init_isr)}

    def scales(self, tensors):
        return tensors["fixed_scales"]

    def set_scales(self, tensors, values):
        tensors["fixed_scales"].copy_(values)


class _SoftplusSigmaForm(ScaleForm):
    """A learned form whose first scale is ``sigma_basis = softplus(sigma)``, a parameter ``sigma``."""

    def initial_tensors(self, init_sigma_basis, init_isr):
        initial = self._initial_scales(init_sigma_basis, init_isr)
        tensors = {"sigma": _raw_sigma(initial[:1])}
        if self.n_scales > 1:
            tensors.update(self._step_tensors(initial, init_isr))
        return tensors

    def _step_tensors(self, initial, init_isr):
        """The tensors of the steps between neighbouring scales, at the initial scales."""
        raise NotImplementedError

    def sigma_basis(self, tensors):
        return _positive_sigma(tensors["sigma"])


class IsrForm(_SoftplusSigmaForm):
    """``"isr"``, the paper's form (Eq. 5): parameters ``sigma`` and ``gamma``.

    ``sigma_basis = softplus(sigma)``, ``ISR = 1 + eps + gamma**2`` and the scales are
    log-uniform between them (Eq. 2). ``eps`` is a floor Eq. 5 lacks; the sign of ``gamma``
    does not matter.
    """

    @classmethod
    def lowest_init_isr(cls, n_scales, init_sigma_basis):
        return 1 + MIN_SCALE_STEP

    def _step_tensors(self, initial, init_isr):
        return {"gamma": initial.new_tensor(gamma_from_isr(init_isr - MIN_SCALE_STEP))}

    def isr(self, tensors):
        return _step_above_floor(tensors["gamma"])

    def scales(self, tensors):
        sigma_basis = self.sigma_basis(tensors)
        if self.n_scales == 1:
            return sigma_basis
        return log_uniform_scales(self.n_scales, sigma_basis, self.isr(tensors))

    def upgrade_state(self, state_dict, prefix, saved_format):
        return _upgrade_unconstrained_sigma(state_dict, prefix, saved_format, "gamma")


class AuthorsForm(_SoftplusSigmaForm):
    """``"authors"``, the authors' code (learn mode 6, ``SINGLE_RATIO_SQUARED``): ``sigma``, ``step_gamma``.

    Every neighbouring pair of scales is a factor ``1 + eps + step_gamma**2`` apart, so
    ``ISR = (1 + eps + step_gamma**2) ** (N_S - 1)``: Eq. 5 applied per step, not to the
    whole range. At ISR 3 with three scales ``dISR / dgamma`` is 2.1 times that of ``"isr"``
    (2.9 times with four).
    """

    @classmethod
    def lowest_init_isr(cls, n_scales, init_sigma_basis):
        return (1 + MIN_SCALE_STEP) ** (n_scales - 1)

    def _step_tensors(self, initial, init_isr):
        step = initial.new_tensor(init_isr ** (1.0 / (self.n_scales - 1)))
        return {"step_gamma": _root_above_floor(step - 1)}

    def isr(self, tensors):
        return _step_above_floor(tensors["step_gamma"]) ** (self.n_scales - 1)

    def scales(self, tensors):
        sigma_basis = self.sigma_basis(tensors)
        if self.n_scales == 1:
            return sigma_basis
        step = _step_above_floor(tensors["step_gamma"])
        return geometric_scales(sigma_basis, step.expand(self.n_scales - 1))


class RatiosForm(_SoftplusSigmaForm):
    """``"ratios"``, the authors' ``RATIO_SQUARED``: ``sigma`` and the ``N_S - 1`` ``ratio_roots``.

    Scale ``i + 1`` is scale ``i`` times ``1 + eps + ratio_roots[i]**2`` (Eq. 5 per step, each
    step its own), so the spacing need not stay log-uniform.
    """

    @classmethod
    def lowest_init_isr(cls, n_scales, init_sigma_basis):
        return (1 + MIN_SCALE_STEP) ** (n_scales - 1)

    def _step_tensors(self, initial, init_isr):
        step = initial.new_tensor(init_isr ** (1.0 / (self.n_scales - 1)))
        return {"ratio_roots": _root_above_floor(step - 1).repeat(self.n_scales - 1)}

    def scales(self, tensors):
        sigma_basis = self.sigma_basis(tensors)
        if self.n_scales == 1:
            return sigma_basis
        return geometric_scales(sigma_basis, _step_above_floor(tensors["ratio_roots"]))


class SpacingForm(_SoftplusSigmaForm):
    """``"spacing"``: ``sigma`` and the ``N_S - 1`` ``gap_roots``, additive gaps between neighbours.

    Scale ``i + 1`` is scale ``i`` plus ``eps + gap_roots[i]**2`` pixels.
    """

    @classmethod
    def lowest_init_isr(cls, n_scales, init_sigma_basis):
        # Eq. 2's first gap is its smallest: it must exceed eps pixels.
        return (1 + MIN_SCALE_STEP / init_sigma_basis) ** (n_scales - 1)

    def _step_tensors(self, initial, init_isr):
        return {"gap_roots": _root_above_floor(torch.diff(initial))}

    def scales(self, tensors):
        sigma_basis = self.sigma_basis(tensors)
        if self.n_scales == 1:
            return sigma_basis
        gaps = MIN_SCALE_STEP + tensors["gap_roots"] ** 2
        return torch.cat([sigma_basis, sigma_basis + torch.cumsum(gaps, dim=0)])

    def upgrade_state(self, state_dict, prefix, saved_format):
        return _upgrade_unconstrained_sigma(state_dict, prefix, saved_format, "gap_roots")


def _upgrade_unconstrained_sigma(state_dict, prefix, saved_format, roots_name):
    """Format 1 (before the forms were constrained): ``sigma`` was the scale itself, ``root**2`` a step."""
    if saved_format >= 2:
        return None
    sigma = state_dict.get(prefix + "sigma")
    if sigma is None:
        return None
    sigma = sigma.detach()
    error = _not_positive_error(prefix + "sigma", sigma, "sigma_basis")
    if error is not None:
        return error
    state_dict[prefix + "sigma"] = _raw_sigma(sigma)
    roots = state_dict.get(prefix + roots_name)
    if roots is not None:
        roots = roots.detach()
        state_dict[prefix + roots_name] = torch.copysign(_root_above_floor(roots**2), roots)
    return None


class LogForm(ScaleForm):
    """``"log"``: parameters ``log_sigma`` and ``log_isr_excess``; scales log-uniform (Eq. 2).

    ``sigma_basis = exp(log_sigma)`` and ``ISR = 1 + eps + exp(log_isr_excess)``. A unit step
    of ``log_isr_excess`` multiplies ``ISR - 1 - eps`` by ``e`` whatever the ISR, and a unit
    step of ``log_sigma`` multiplies ``sigma_basis`` by ``e``. With Eq. 5 the same step of
    ``gamma`` changes the ISR by ``2 gamma``, which vanishes near ``ISR = 1``, while
    ``log(ISR - 1)`` moves by ``2 / gamma``, which diverges: under an optimiser that takes
    steps of a set size (Adam), ``"log"`` approaches an ISR near 1 geometrically where
    ``gamma`` jumps across 0. Plain SGD scales the step of ``log_isr_excess`` by ``ISR - 1``.
    """

    @classmethod
    def lowest_init_isr(cls, n_scales, init_sigma_basis):
        return 1 + MIN_SCALE_STEP

    def initial_tensors(self, init_sigma_basis, init_isr):
        initial = self._initial_scales(init_sigma_basis, init_isr)
        tensors = {"log_sigma": torch.log(initial[:1])}
        if self.n_scales > 1:
            tensors["log_isr_excess"] = initial.new_tensor(math.log(init_isr - 1 - MIN_SCALE_STEP))
        return tensors

    def sigma_basis(self, tensors):
        log_sigma = tensors["log_sigma"]
        return torch.exp(log_sigma).clamp_min(torch.finfo(log_sigma.dtype).tiny)

    def isr(self, tensors):
        return 1 + MIN_SCALE_STEP + torch.exp(tensors["log_isr_excess"])

    def scales(self, tensors):
        sigma_basis = self.sigma_basis(tensors)
        if self.n_scales == 1:
            return sigma_basis
        return log_uniform_scales(self.n_scales, sigma_basis, self.isr(tensors))


class DirectForm(ScaleForm):
    """``"direct"``: every scale its own parameter, ``direct_scales``; no interval imposed.

    The paper's Table 4 ablation (after Yang et al. 2023, "without defining intervals the
    internal scales adhere to"), kept valid by construction: the values
    ``softplus(direct_scales)`` (positive; the identity above 1 px, as for ``sigma`` of the
    other forms) are sorted, and the one of rank ``i`` is multiplied by ``(1 + eps) ** i``, so
    that neighbours are at least a factor ``1 + eps`` apart even where two values meet. Two
    parameters that cross during training swap the scales they stand for; nothing ties one
    scale to another. The scales come out increasing, or in the order of the values given to
    :meth:`~skscale.nn.InternalScales.from_values` (the non-persistent buffer
    ``direct_ranks`` holds each position's rank).
    """

    def initial_tensors(self, init_sigma_basis, init_isr):
        initial = self._initial_scales(init_sigma_basis, init_isr)
        return {"direct_scales": _raw_sigma(initial / _rank_growth(initial))}

    def unsaved_buffers(self):
        return {"direct_ranks": torch.arange(self.n_scales)}

    def scales(self, tensors):
        ascending = torch.sort(_positive_sigma(tensors["direct_scales"])).values
        return (ascending * _rank_growth(ascending))[tensors["direct_ranks"]]

    def set_scales(self, tensors, values):
        raw, ranks = _direct_raw(values)
        tensors["direct_scales"].copy_(raw)
        tensors["direct_ranks"].copy_(ranks)

    def upgrade_state(self, state_dict, prefix, saved_format):
        # Formats 1 and 2: direct_scales held the scales themselves.
        key = prefix + "direct_scales"
        values = state_dict.get(key)
        if saved_format >= 3 or values is None:
            return None
        values = values.detach()
        error = _not_positive_error(key, values, "scales")
        if error is None:
            state_dict[key] = _direct_raw(values)[0]
        return error


def _direct_raw(values):
    """The ``direct_scales`` and ranks for which ``"direct"`` gives the positive ``values``."""
    ranks = torch.argsort(torch.argsort(values))
    return _raw_sigma(values / _rank_growth(values)[ranks]), ranks


def _rank_growth(scales):
    """``(1 + eps) ** i`` for the ranks ``i`` of sorted scales: the factor floor of ``"direct"``."""
    ranks = torch.arange(scales.shape[-1], device=scales.device, dtype=scales.dtype)
    return (1 + MIN_SCALE_STEP) ** ranks


#: The forms of :class:`~skscale.nn.InternalScales`, by ``parameterisation`` name.
FORMS = {
    "fixed": FixedForm,
    "isr": IsrForm,
    "spacing": SpacingForm,
    "direct": DirectForm,
    "authors": AuthorsForm,
    "ratios": RatiosForm,
    "log": LogForm,
}

#: The names of :data:`FORMS` (the ``parameterisation`` values), in its order.
PARAMETERISATIONS = tuple(FORMS)
